"""Actor services and selectors (domain.md §2.2, §2.3 Everyone recompute)."""

from __future__ import annotations

import pytest

from accounts.models import Actor, ActorGroupMembership, Token
from accounts.selectors.actors import actor_get, actor_groups_peek, actor_list
from accounts.services.actors import (
    actor_create,
    actor_create_system,
    actor_delete,
    actor_disable,
    actor_enable,
    actor_update,
)
from accounts.services.tokens import token_create
from accounts.tests.factories import (
    ACTOR_TYPES,
    AccountFactory,
    ActorFactory,
    GroupFactory,
    MembershipFactory,
    admin_subject,
    everyone_group,
    subject_of_type,
    synced_group,
)
from firezone.errors import LimitReached, NotFound, Refused, Unauthorized, ValidationFailed
from firezone.models import ChangeLog

pytestmark = pytest.mark.django_db

ADMIN, API, USER, SA = ACTOR_TYPES
MANAGERS = (ADMIN, API)


def _rows():
    return (Actor.objects.count(), ActorGroupMembership.objects.count(), ChangeLog.objects.count())


# --- create ---------------------------------------------------------------------------------------


def test_create_records_and_joins_everyone(django_capture_on_commit_callbacks) -> None:
    account = AccountFactory()
    everyone = everyone_group(account)
    group = GroupFactory(account=account)
    subject = subject_of_type(account, ADMIN)
    with django_capture_on_commit_callbacks() as callbacks:
        actor = actor_create(
            subject=subject, name="  Jane Doe ", type=USER, memberships=[{"group_id": group.pk}]
        )
    assert actor.name == "Jane Doe" and actor.account_id == account.pk
    groups = set(actor.memberships.values_list("group_id", flat=True))
    assert groups == {everyone.pk, group.pk}
    log = list(ChangeLog.objects.filter(account_id=account.pk).order_by("lsn"))
    first = log[0]
    assert first.data is not None and first.subject is not None
    assert (first.table, first.op, first.data["id"]) == ("actors", "insert", str(actor.pk))
    assert first.subject["actor_id"] == str(subject.actor_id)
    new_memberships = [
        e.data["group_id"]
        for e in log[1:]
        if e.table == "actor_group_memberships" and e.data and e.data["actor_id"] == str(actor.pk)
    ]
    assert sorted(new_memberships) == sorted([str(group.pk), str(everyone.pk)])
    # the admin (created directly, outside the services) joined Everyone in the recompute too
    assert len(log) == 4
    assert len(callbacks) == 4


def test_everyone_recompute_adds_missing_users_never_service_accounts() -> None:
    account = AccountFactory()
    everyone = everyone_group(account)
    old_user = ActorFactory(account=account)  # created directly: not yet a member
    subject = subject_of_type(account, ADMIN)
    sa = actor_create(subject=subject, name="Robot", type=SA)
    api = actor_create(subject=subject, name="Script", type=API)
    admin = actor_create(subject=subject, name="Boss", type=ADMIN)
    members = set(everyone.memberships.values_list("actor_id", flat=True))
    assert {old_user.pk, admin.pk, subject.actor_id} <= members
    assert sa.pk not in members and api.pk not in members


def test_system_create_skips_grant_and_limits_but_recomputes() -> None:
    account = AccountFactory(limits={"users_count": 0, "account_admin_users_count": 0})
    everyone = everyone_group(account)
    actor = actor_create_system(account=account, name="Founder", type=ADMIN)
    assert everyone.memberships.filter(actor=actor).exists()
    assert ChangeLog.objects.filter(table="actors", op="insert", subject__isnull=True).exists()


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"name": "", "type": USER}, "name", "can't be blank"),
        ({"name": "x" * 256, "type": USER}, "name", "should be at most 255 character(s)"),
        ({"name": "Jo", "type": "root"}, "type", "is invalid"),
        ({"name": "Jo", "type": None}, "type", "can't be blank"),
    ],
)
def test_create_bad_input_writes_nothing(kwargs, field, message) -> None:
    subject = admin_subject()
    before = _rows()
    with pytest.raises(ValidationFailed) as exc:
        actor_create(subject=subject, **kwargs)
    assert message in exc.value.errors[field]
    assert _rows() == before


def test_create_memberships_reserved_and_unknown_groups() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    before = _rows()
    for group in (everyone_group(account), synced_group(account)):
        with pytest.raises(ValidationFailed) as exc:
            actor_create(subject=subject, name="Jo", type=USER, memberships=[group.pk])
        assert exc.value.errors == {"memberships.group_id": ["is reserved"]}
    foreign = GroupFactory()
    with pytest.raises(ValidationFailed):
        actor_create(subject=subject, name="Jo", type=USER, memberships=[foreign.pk])
    with pytest.raises(ValidationFailed):
        actor_create(subject=subject, name="Jo", type=USER, memberships=["not-a-uuid"])
    assert Actor.objects.count() == before[0]


@pytest.mark.parametrize("actor_type", ACTOR_TYPES)
@pytest.mark.parametrize("target", ACTOR_TYPES)
def test_create_permission_and_grant_matrix(actor_type, target) -> None:
    subject = subject_of_type(AccountFactory(), actor_type)
    if actor_type not in MANAGERS:
        with pytest.raises(Unauthorized):
            actor_create(subject=subject, name="New", type=target)
    elif actor_type == API and target == ADMIN:
        # An API client cannot create admins.
        with pytest.raises(ValidationFailed) as exc:
            actor_create(subject=subject, name="New", type=target)
        assert exc.value.errors == {"type": ["does not have permissions to grant this actor type"]}
    else:
        assert actor_create(subject=subject, name="New", type=target).type == target


@pytest.mark.parametrize(
    ("limits", "actor_type", "code"),
    [
        ({"users_count": 2}, USER, "seats_limit_reached"),
        ({"users_count": 2}, ADMIN, "seats_limit_reached"),
        ({"account_admin_users_count": 1}, ADMIN, "seats_limit_reached"),
        ({"service_accounts_count": 0}, SA, "service_accounts_limit_reached"),
    ],
)
def test_create_billing_limits(limits, actor_type, code) -> None:
    account = AccountFactory(limits=limits)
    subject = subject_of_type(account, ADMIN)  # one admin
    ActorFactory(account=account)  # one user: 2 seats used
    before = _rows()
    with pytest.raises(LimitReached) as exc:
        actor_create(subject=subject, name="Extra", type=actor_type)
    assert exc.value.code == code
    assert _rows() == before
    # API clients are never limited.
    assert actor_create(subject=subject, name="Api", type=API)


def test_create_in_disabled_account_is_refused() -> None:
    from django.utils import timezone

    account = AccountFactory(disabled_at=timezone.now())
    with pytest.raises(LimitReached):
        actor_create(subject=subject_of_type(account, ADMIN), name="Late", type=USER)


# --- update ---------------------------------------------------------------------------------------


def test_update_name_type_and_editable_memberships_only() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    everyone = everyone_group(account)
    keep, drop, add = (GroupFactory(account=account) for _ in range(3))
    synced = synced_group(account)
    actor = ActorFactory(account=account)
    for group in (everyone, keep, drop, synced):
        MembershipFactory(account=account, group=group, actor=actor)
    updated = actor_update(
        subject=subject,
        actor=actor,
        name=" Renamed ",
        type=ADMIN,
        memberships=[keep.pk, {"group_id": add.pk}],
    )
    assert (updated.name, updated.type) == ("Renamed", ADMIN)
    groups = set(actor.memberships.values_list("group_id", flat=True))
    assert groups == {everyone.pk, keep.pk, add.pk, synced.pk}
    ops = [(e.table, e.op) for e in ChangeLog.objects.filter(account_id=account.pk).order_by("lsn")]
    assert ops == [
        ("actors", "update"),
        ("actor_group_memberships", "delete"),
        ("actor_group_memberships", "insert"),
    ]


def test_update_synced_actor_changes_only_type() -> None:
    from django.utils import timezone

    account = AccountFactory()
    actor = ActorFactory(account=account, name="From IdP", last_synced_at=timezone.now())
    updated = actor_update(
        subject=subject_of_type(account, ADMIN), actor=actor, name="Local name", type=ADMIN
    )
    assert (updated.name, updated.type) == ("From IdP", ADMIN)


def test_update_last_admin_cannot_lose_admin_type() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    ActorFactory(account=account, admin=True, disabled_at="2024-01-01T00:00:00Z")
    with pytest.raises(Refused) as exc:
        actor_update(subject=subject, actor=subject.actor, type=USER)
    assert exc.value.code == "cant_remove_admin_type"
    second = ActorFactory(account=account, admin=True)
    assert actor_update(subject=subject, actor=subject.actor, type=USER).type == USER
    with pytest.raises(Refused):
        actor_update(subject=subject, actor=second, type=USER)


def test_update_api_client_cannot_promote_to_admin() -> None:
    account = AccountFactory()
    actor = ActorFactory(account=account)
    with pytest.raises(ValidationFailed):
        actor_update(subject=subject_of_type(account, API), actor=actor, type=ADMIN)
    actor.refresh_from_db()
    assert actor.type == USER


def test_update_bad_input_and_other_account() -> None:
    subject = admin_subject()
    actor = ActorFactory(account=subject.account, name="Same")
    foreign = ActorFactory()
    before = _rows()
    with pytest.raises(ValidationFailed):
        actor_update(subject=subject, actor=actor, name="  ")
    with pytest.raises(NotFound):
        actor_update(subject=subject, actor=foreign, name="Stolen")
    assert _rows() == before


@pytest.mark.parametrize("actor_type", ACTOR_TYPES)
def test_update_disable_enable_delete_permissions(actor_type) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, actor_type)
    subject_of_type(account, ADMIN)  # keep an admin around
    target = ActorFactory(account=account)
    calls = [
        lambda: actor_update(subject=subject, actor=target, name="X Y"),
        lambda: actor_disable(subject=subject, actor=target),
        lambda: actor_enable(subject=subject, actor=target),
        lambda: actor_delete(subject=subject, actor=target),
    ]
    for call in calls:
        if actor_type in MANAGERS:
            call()
        else:
            with pytest.raises(Unauthorized):
                call()


# --- disable / enable / delete --------------------------------------------------------------------


def test_disable_deletes_tokens_and_enable_clears(django_capture_on_commit_callbacks) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    actor = ActorFactory(account=account, type=API)
    issued = token_create(type="api_client", account=account, actor=actor)
    with django_capture_on_commit_callbacks() as callbacks:
        disabled = actor_disable(subject=subject, actor=actor)
    assert disabled.disabled_at is not None
    assert not Token.objects.filter(pk=issued.token.pk).exists()
    deleted = ChangeLog.objects.get(table="tokens", op="delete")
    assert deleted.old_data is not None
    assert deleted.old_data["id"] == str(issued.token.pk)
    # token deletes go to the token's session group (disconnect), the actor update to the account
    assert len(callbacks) == 2
    assert actor_enable(subject=subject, actor=actor).disabled_at is None


def test_disable_needs_token_manage_too() -> None:
    from dataclasses import replace

    from accounts.auth import P

    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    subject = replace(subject, permissions=subject.permissions - {P.TOKEN_MANAGE})
    with pytest.raises(Unauthorized):
        actor_disable(subject=subject, actor=ActorFactory(account=account))


def test_last_admin_guards() -> None:
    account = AccountFactory()
    admin = ActorFactory(account=account, admin=True)
    api_subject = subject_of_type(account, API)
    with pytest.raises(Refused) as exc:
        actor_disable(subject=api_subject, actor=admin)
    assert exc.value.code == "cant_disable_the_last_admin"
    with pytest.raises(Refused) as exc:
        actor_delete(subject=api_subject, actor=admin)
    assert exc.value.code == "cant_delete_the_last_admin"
    other = ActorFactory(account=account, admin=True)
    actor_disable(subject=api_subject, actor=admin)
    # A disabled admin is not "the last enabled admin": it may be deleted.
    with pytest.raises(Refused):
        actor_delete(subject=api_subject, actor=other)
    actor_delete(subject=api_subject, actor=admin)
    assert not Actor.objects.filter(pk=admin.pk).exists()


def test_delete_cascades_and_records(django_capture_on_commit_callbacks) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    actor = ActorFactory(account=account)
    membership = MembershipFactory(account=account, actor=actor)
    with django_capture_on_commit_callbacks() as callbacks:
        actor_delete(subject=subject, actor=actor)
    assert not ActorGroupMembership.objects.filter(pk=membership.pk).exists()
    tables = list(
        ChangeLog.objects.filter(account_id=account.pk, op="delete")
        .order_by("lsn")
        .values_list("table", flat=True)
    )
    assert tables == ["actor_group_memberships", "actors"]
    assert len(callbacks) == 2
    with pytest.raises(NotFound):
        actor_delete(subject=subject, actor=ActorFactory())


# --- selectors ------------------------------------------------------------------------------------


def test_selectors_scope_and_filters() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    alice = ActorFactory(account=account, name="Alice")
    ActorFactory(account=account, name="Bob", type=SA)
    ActorFactory(account=account, name="Carol", disabled_at="2024-01-01T00:00:00Z")
    foreign = ActorFactory(name="Alice Foreign")
    assert actor_get(subject, actor_id=alice.pk) == alice
    with pytest.raises(NotFound):
        actor_get(subject, actor_id=foreign.pk)
    with pytest.raises(NotFound):
        actor_get(subject, actor_id="garbage")
    names = [a.name for a in actor_list(subject)]
    assert "Alice Foreign" not in names and names == sorted(names)
    assert [a.name for a in actor_list(subject, search="ali")] == ["Alice"]
    assert [a.name for a in actor_list(subject, type=SA)] == ["Bob"]
    assert [a.name for a in actor_list(subject, disabled=True)] == ["Carol"]
    group = GroupFactory(account=account, name="Eng")
    MembershipFactory(account=account, group=group, actor=alice)
    peek = actor_groups_peek(subject, actor_ids=[alice.pk, subject.actor_id])
    assert peek[alice.pk]["count"] == 1 and peek[alice.pk]["items"] == [group]
    assert peek[subject.actor_id]["count"] == 0


def test_groups_peek_counts_and_picks_in_the_database(django_assert_num_queries) -> None:
    account = AccountFactory()
    subject = admin_subject(account)
    alice = ActorFactory(account=account, name="Alice")
    bob = ActorFactory(account=account, name="Bob")
    names = ["Ops", "Eng", "QA", "Eng", "Ads", "Sales"]  # synced groups may share a name
    groups = [synced_group(account, name=name) for name in names]
    for group in groups:
        MembershipFactory(account=account, group=group, actor=alice)
    MembershipFactory(account=account, group=groups[0], actor=bob)
    with django_assert_num_queries(2):  # counts and picks, then the picked groups
        peek = actor_groups_peek(subject, actor_ids=[alice.pk, bob.pk], limit=3)
    engs = sorted((groups[1], groups[3]), key=lambda g: g.pk)
    assert peek[alice.pk] == {"count": 6, "items": [groups[4], *engs]}
    assert peek[bob.pk] == {"count": 1, "items": [groups[0]]}
    with django_assert_num_queries(0):
        assert actor_groups_peek(subject, actor_ids=[]) == {}


@pytest.mark.parametrize("actor_type", (USER, SA))
def test_selectors_refuse_non_managers(actor_type) -> None:
    subject = subject_of_type(AccountFactory(), actor_type)
    with pytest.raises(Unauthorized):
        actor_list(subject)
    with pytest.raises(Unauthorized):
        actor_get(subject, actor_id=subject.actor_id)
