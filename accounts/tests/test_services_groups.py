"""Group services and selectors (domain.md §2.3)."""

from __future__ import annotations

import pytest

from accounts.models import ActorGroup, ActorGroupMembership
from accounts.selectors.groups import (
    group_actors_peek,
    group_get,
    group_list,
    group_list_editable,
    group_list_for_actor,
    groups_count_by_provider,
)
from accounts.services.groups import (
    everyone_memberships_update,
    group_create,
    group_create_everyone,
    group_delete,
    group_update,
    membership_add,
    membership_remove,
)
from accounts.tests.factories import (
    ACTOR_TYPES,
    AccountFactory,
    ActorFactory,
    GroupFactory,
    MembershipFactory,
    everyone_group,
    subject_of_type,
    synced_group,
)
from firezone.errors import NotFound, Refused, Unauthorized, ValidationFailed
from firezone.models import ChangeLog

pytestmark = pytest.mark.django_db

ADMIN, API, USER, SA = ACTOR_TYPES


def _rows():
    return (
        ActorGroup.objects.count(),
        ActorGroupMembership.objects.count(),
        ChangeLog.objects.count(),
    )


def test_create_with_members_records_changes(django_capture_on_commit_callbacks) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    alice, bob = ActorFactory(account=account), ActorFactory(account=account, type=SA)
    with django_capture_on_commit_callbacks() as callbacks:
        group = group_create(subject=subject, name="  Engineering ", members=[alice, bob.pk])
    assert group.name == "Engineering" and group.type == "static"
    assert group.created_by == "identity"
    assert set(group.memberships.values_list("actor_id", flat=True)) == {alice.pk, bob.pk}
    ops = [(e.table, e.op) for e in ChangeLog.objects.order_by("lsn")]
    assert ops == [
        ("actor_groups", "insert"),
        ("actor_group_memberships", "insert"),
        ("actor_group_memberships", "insert"),
    ]
    assert len(callbacks) == 3


@pytest.mark.parametrize(
    ("name", "members", "field", "message"),
    [
        ("", None, "name", "can't be blank"),
        ("x" * 256, None, "name", "should be at most 255 character(s)"),
        ("Taken", None, "name", "has already been taken"),
        ("Everyone", None, "name", "has already been taken"),
        ("Fresh", "foreign", "memberships", "does not exist"),
        ("Fresh", ["nope"], "memberships", "does not exist"),
    ],
)
def test_create_bad_input_writes_nothing(name, members, field, message) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    GroupFactory(account=account, name="Taken")
    everyone_group(account)
    if members == "foreign":
        members = [ActorFactory()]
    before = _rows()
    with pytest.raises(ValidationFailed) as exc:
        group_create(subject=subject, name=name, members=members)
    assert exc.value.errors == {field: [message]}
    assert _rows() == before


def test_synced_group_names_do_not_clash_with_static() -> None:
    account = AccountFactory()
    synced_group(account, name="Engineering")
    group = group_create(subject=subject_of_type(account, ADMIN), name="Engineering")
    assert group.provider_id is None


def test_update_renames_and_replaces_members() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, API)
    group = GroupFactory(account=account)
    stay, leave, join = (ActorFactory(account=account) for _ in range(3))
    MembershipFactory(account=account, group=group, actor=stay)
    MembershipFactory(account=account, group=group, actor=leave)
    start = ChangeLog.objects.count()
    group_update(subject=subject, group=group, name="Renamed", members=[stay.pk, join.pk])
    group.refresh_from_db()
    assert group.name == "Renamed"
    assert set(group.memberships.values_list("actor_id", flat=True)) == {stay.pk, join.pk}
    ops = [(e.table, e.op) for e in ChangeLog.objects.order_by("lsn")[start:]]
    assert ops == [
        ("actor_groups", "update"),
        ("actor_group_memberships", "delete"),
        ("actor_group_memberships", "insert"),
    ]


def test_update_and_delete_refuse_synced_and_managed_groups() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    synced = synced_group(account)
    everyone = everyone_group(account)
    before = _rows()
    for group, code in ((synced, "synced_group"), (everyone, "managed_group")):
        with pytest.raises(Refused) as exc:
            group_update(subject=subject, group=group, name="Nope")
        assert exc.value.code == code
        # §8.10: the Everyone group cannot be deleted either.
        with pytest.raises(Refused) as exc:
            group_delete(subject=subject, group=group)
        assert exc.value.code == code
        with pytest.raises(Refused):
            membership_add(subject=subject, group=group, actor=subject.actor)
    assert _rows() == before


def test_delete_cascades_memberships(django_capture_on_commit_callbacks) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    group = GroupFactory(account=account)
    MembershipFactory(account=account, group=group)
    with django_capture_on_commit_callbacks() as callbacks:
        group_delete(subject=subject, group=group)
    assert not ActorGroup.objects.filter(pk=group.pk).exists()
    ops = [(e.table, e.op) for e in ChangeLog.objects.filter(op="delete").order_by("lsn")]
    assert ops == [("actor_group_memberships", "delete"), ("actor_groups", "delete")]
    assert len(callbacks) == 2


@pytest.mark.parametrize("actor_type", ACTOR_TYPES)
def test_permissions(actor_type) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, actor_type)
    group = GroupFactory(account=account)
    calls = [
        lambda: group_create(subject=subject, name="New"),
        lambda: group_update(subject=subject, group=group, name="Newer"),
        lambda: membership_add(subject=subject, group=group, actor=subject.actor),
        lambda: membership_remove(subject=subject, group=group, actor=subject.actor),
        lambda: group_list(subject).count(),
        lambda: group_delete(subject=subject, group=group),
    ]
    for call in calls:
        if actor_type in (ADMIN, API):
            call()
        else:
            with pytest.raises(Unauthorized):
                call()


def test_other_account_groups_are_not_found() -> None:
    subject = subject_of_type(AccountFactory(), ADMIN)
    foreign = GroupFactory()
    for call in (
        lambda: group_update(subject=subject, group=foreign, name="x"),
        lambda: group_delete(subject=subject, group=foreign),
        lambda: group_get(subject, group_id=foreign.pk),
        lambda: membership_add(subject=subject, group=foreign, actor=subject.actor),
    ):
        with pytest.raises(NotFound):
            call()
    assert foreign not in group_list(subject)


def test_membership_add_remove_idempotent() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    group = GroupFactory(account=account)
    actor = ActorFactory(account=account)
    first = membership_add(subject=subject, group=group, actor=actor)
    assert membership_add(subject=subject, group=group, actor=actor) == first
    membership_remove(subject=subject, group=group, actor=actor)
    membership_remove(subject=subject, group=group, actor=actor)
    assert ChangeLog.objects.filter(table="actor_group_memberships").count() == 2


def test_everyone_create_and_recompute() -> None:
    account = AccountFactory()
    user = ActorFactory(account=account)
    admin = ActorFactory(account=account, admin=True)
    disabled = ActorFactory(account=account, disabled_at="2024-01-01T00:00:00Z")
    robot = ActorFactory(account=account, type=SA)
    api = ActorFactory(account=account, type=API)
    ActorFactory()  # another account
    everyone = group_create_everyone(account=account)
    assert everyone.type == "managed" and everyone.created_by == "system"
    members = set(everyone.memberships.values_list("actor_id", flat=True))
    assert members == {user.pk, admin.pk, disabled.pk}
    assert robot.pk not in members and api.pk not in members
    # Idempotent: a second recompute inserts nothing and records nothing.
    before = ChangeLog.objects.count()
    assert everyone_memberships_update(account_id=account.pk) == []
    assert ChangeLog.objects.count() == before
    with pytest.raises(ValidationFailed):
        group_create_everyone(account=account)


def test_selectors() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    static = GroupFactory(account=account, name="B static")
    everyone = everyone_group(account)
    synced = synced_group(account, name="A synced")
    actor = ActorFactory(account=account, name="Zed")
    MembershipFactory(account=account, group=static, actor=actor)
    MembershipFactory(account=account, group=everyone, actor=actor)
    GroupFactory()  # other account
    assert [g.name for g in group_list(subject)] == ["A synced", "B static", "Everyone"]
    assert list(group_list_editable(subject)) == [static]
    assert list(group_list_for_actor(subject, actor=actor)) == [static, everyone]
    assert groups_count_by_provider(subject) == {synced.provider_id: 1}
    peek = group_actors_peek(subject, group_ids=[static.pk, synced.pk], limit=1)
    assert peek[static.pk] == {"count": 1, "items": [actor]}
    assert peek[synced.pk]["count"] == 0
    with pytest.raises(NotFound):
        group_list_for_actor(subject, actor=ActorFactory())
