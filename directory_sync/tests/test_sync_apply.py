"""The write phase of directory sync (billing_sync_jobs.md §2.4-§2.6): `provider_sync_apply`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import (
    Actor,
    ActorGroup,
    ActorGroupMembership,
    AuthIdentity,
    AuthProvider,
    Token,
)
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
    everyone_group,
)
from directory_sync.directory import DirectoryGroup, DirectoryIdentity, SyncCountedFailure
from directory_sync.services.sync import (
    MSG_GROUPS_TOO_LARGE,
    MSG_IDENTITIES_TOO_LARGE,
    SyncRefused,
    SyncResult,
    deletion_refused,
    provider_sync_apply,
)
from firezone import stream
from firezone.models import ChangeLog
from gateways.models import Client
from gateways.tests._sockets_client import ClientWorld, client_world, join_client, push, view
from gateways.tests.factories import SiteFactory
from resources.models import Policy
from resources.tests.factories import ClientFactory, PolicyFactory, client_token
from tests.live import live, live_daphne, run_sync  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider() -> AuthProvider:
    account = AccountFactory()
    everyone_group(account)
    return ProviderFactory(
        account=account,
        adapter=AuthProvider.Adapter.GOOGLE_WORKSPACE,
        provisioner=AuthProvider.Provisioner.CUSTOM,
    )


def user(n: int, name: str | None = None, email: str | None = None) -> DirectoryIdentity:
    return DirectoryIdentity(f"U:{n}", name or f"User {n}", email or f"user{n}@example.com")


def group(n: int, name: str | None = None) -> DirectoryGroup:
    return DirectoryGroup(f"G:{n}", name or f"Group:{n}")


def sync(
    provider: AuthProvider,
    users: Iterable[DirectoryIdentity | int],
    groups: Iterable[DirectoryGroup | int] = (),
    memberships: Iterable[Any] = (),
) -> SyncResult:
    """Sync `users` and `groups` (numbers stand for `user(n)` / `group(n)`)."""
    return provider_sync_apply(
        provider=provider,
        identities=[user(u) if isinstance(u, int) else u for u in users],
        groups=[group(g) if isinstance(g, int) else g for g in groups],
        memberships=list(memberships),
    )


def identity(provider: AuthProvider, pid: str) -> AuthIdentity:
    return AuthIdentity.objects.select_related("actor").get(
        provider=provider, provider_identifier=pid
    )


def members(provider: AuthProvider) -> set[tuple[str, str]]:
    pids = {
        i.actor_id: i.provider_identifier for i in AuthIdentity.objects.filter(provider=provider)
    }
    return {
        (m.group.provider_identifier or "", pids[m.actor_id])
        for m in ActorGroupMembership.objects.filter(group__provider=provider).select_related(
            "group"
        )
    }


def state() -> tuple[int, ...]:
    return (
        Actor.objects.count(),
        AuthIdentity.objects.count(),
        ActorGroup.objects.count(),
        ActorGroupMembership.objects.count(),
        ChangeLog.objects.count(),
    )


# --- §2.4 identities ------------------------------------------------------------------------------


def test_first_sync_creates_actors_identities_groups_and_memberships(provider):
    result = sync(
        provider, range(1, 4), range(1, 3), [("G:1", "U:1"), ("G:1", "U:2"), ("G:2", "U:3")]
    )

    assert result == SyncResult(
        identities=3,
        groups=2,
        identities_inserted=3,
        groups_inserted=2,
        memberships_inserted=3,
    )
    assert result.groups_upserted == 2 and result.changed
    one = identity(provider, "U:1")
    assert one.email == "user1@example.com"
    assert one.provider_state == {"userinfo": {"email": "user1@example.com"}}
    assert one.created_by == "provider"
    assert one.account_id == provider.account_id
    assert one.actor.type == Actor.Type.ACCOUNT_USER
    assert one.actor.name == "User 1"
    assert one.actor.last_synced_at is not None
    g1 = ActorGroup.objects.get(provider=provider, provider_identifier="G:1")
    assert (g1.name, g1.type, g1.created_by) == ("Group:1", "static", "provider")
    assert members(provider) == {("G:1", "U:1"), ("G:1", "U:2"), ("G:2", "U:3")}
    # Everyone: every new user joined the managed group.
    everyone = ActorGroup.objects.get(account=provider.account, type="managed")
    assert set(everyone.memberships.values_list("actor_id", flat=True)) == set(
        AuthIdentity.objects.filter(provider=provider).values_list("actor_id", flat=True)
    )


def test_every_write_is_recorded_in_the_change_log(provider):
    last = ChangeLog.objects.order_by("-lsn").values_list("lsn", flat=True).first() or 0
    sync(provider, range(1, 3), [1], [("G:1", "U:1")])
    tables = list(ChangeLog.objects.filter(lsn__gt=last).values_list("table", "op"))
    assert sorted(tables) == sorted(
        [("actors", "insert")] * 2
        + [("auth_identities", "insert")] * 2
        + [("actor_group_memberships", "insert")] * 3  # 2 Everyone + 1 synced
        + [("actor_groups", "insert")]
    )


def test_update_changes_email_and_name_never_type_or_disabled_at(provider):
    account = provider.account
    admin = ActorFactory(account=account, admin=True, name="Old admin name")
    disabled_at = timezone.now()
    disabled = ActorFactory(account=account, name="Old", disabled_at=disabled_at)
    IdentityFactory(actor=admin, account=account, provider=provider, provider_identifier="U:1")
    IdentityFactory(
        actor=disabled,
        account=account,
        provider=provider,
        provider_identifier="U:2",
        provider_state={"access_token": "kept", "userinfo": {"sub": "U:2", "email": "old@x.com"}},
    )

    result = sync(
        provider, [user(1, "  Admin Renamed  "), user(2, "Disabled Renamed", "new@x.com")]
    )

    assert (result.identities_inserted, result.identities_updated) == (0, 2)
    admin.refresh_from_db()
    disabled.refresh_from_db()
    assert (admin.type, admin.name) == (Actor.Type.ACCOUNT_ADMIN_USER, "Admin Renamed")
    assert admin.last_synced_at is not None and admin.disabled_at is None
    assert (disabled.name, disabled.disabled_at) == ("Disabled Renamed", disabled_at)
    two = identity(provider, "U:2")
    assert two.email == "new@x.com"
    # Sign-in's state stays; sync only sets the directory's e-mail.
    assert two.provider_state == {
        "access_token": "kept",
        "userinfo": {"sub": "U:2", "email": "new@x.com"},
    }


def test_identifiers_are_deduplicated_case_insensitively_and_names_trimmed(provider):
    long_name = "x" * 600
    result = sync(
        provider,
        [
            DirectoryIdentity("U:A", long_name, "a@example.com"),
            DirectoryIdentity("u:a", "Second", "other@example.com"),
            DirectoryIdentity("U:B", "   ", "b@example.com"),
            DirectoryIdentity("  ", "Blank id", None),
        ],
        [DirectoryGroup("G:1", " Group:Trimmed "), DirectoryGroup("G:1", "dup"), group(2, "  ")],
        [("G:1", "u:A"), ("G:1", "U:A"), ("G:1", "U:unknown"), ("G:nested", "U:B")],
    )

    assert (result.identities, result.identities_inserted, result.groups) == (2, 2, 2)
    a = identity(provider, "U:A")
    assert a.actor.name == "x" * 255
    assert identity(provider, "U:B").actor.name == "b@example.com"  # blank name → e-mail
    names = dict(
        ActorGroup.objects.filter(provider=provider).values_list("provider_identifier", "name")
    )
    assert names == {"G:1": "Group:Trimmed", "G:2": "G:2"}
    # Unknown users and groups are dropped; the case-variant pair is one membership.
    assert members(provider) == {("G:1", "U:A")}


def test_gone_identity_is_hard_deleted_with_its_tokens_and_clients_but_not_its_actor(provider):
    sync(provider, range(1, 5), [1], [("G:1", "U:1"), ("G:1", "U:4")])
    gone = identity(provider, "U:4")
    token = Token.objects.create(
        type=Token.Type.BROWSER,
        account=provider.account,
        actor=gone.actor,
        identity=gone,
        secret_salt="s",
        secret_hash="h",
        created_by="system",
    )
    client = ClientFactory(actor=gone.actor, account=provider.account, identity=gone)
    other_token = client_token(gone.actor)  # not tied to the identity: stays

    result = sync(provider, range(1, 4), [1], [("G:1", "U:1")])  # 1 of 4 = 25 % < 50 %

    assert result.identities_deleted == 1
    assert not AuthIdentity.objects.filter(pk=gone.pk).exists()
    assert not Token.objects.filter(pk=token.pk).exists()
    assert not Client.objects.filter(pk=client.pk).exists()
    assert Token.objects.filter(pk=other_token.pk).exists()
    assert Actor.objects.filter(pk=gone.actor_id).exists()
    assert members(provider) == {("G:1", "U:1")}
    assert not ActorGroupMembership.objects.filter(
        actor_id=gone.actor_id, group__provider=provider
    ).exists()
    deleted = set(ChangeLog.objects.filter(op="delete").values_list("table", flat=True).distinct())
    assert {"auth_identities", "clients", "tokens", "actor_group_memberships"} <= deleted


def test_an_identity_gone_and_back_is_created_anew(provider):
    sync(provider, range(1, 5))
    first = identity(provider, "U:4")
    sync(provider, range(1, 4))
    result = sync(provider, range(1, 5))
    assert result.identities_inserted == 1
    again = identity(provider, "U:4")
    assert again.pk != first.pk and again.actor_id != first.actor_id


@pytest.mark.parametrize(
    ("total", "deleting", "refused"),
    [
        (0, 0, False),
        (2, 0, False),
        (2, 1, True),  # 50 % of ≤ 40
        (3, 1, False),  # 33 %
        (40, 19, False),  # 47.5 → 48 %
        (40, 20, True),  # 50 %
        (41, 10, False),  # 24.39 → 24 %
        (41, 11, True),  # 26.8 → 27 %
        (200, 49, True),  # 24.5 → 25 % (half away from zero, like Elixir's round)
        (200, 48, False),  # 24 %
        (1000, 249, True),  # 24.9 → 25 %
    ],
)
def test_deletion_breaker_thresholds(total, deleting, refused):
    assert deletion_refused(total=total, deleting=deleting) is refused


def test_identity_breaker_refuses_the_whole_sync(provider):
    sync(provider, range(1, 3), [1], [("G:1", "U:1")])
    before = state()

    with pytest.raises(SyncRefused) as refused:
        sync(provider, [1, 3], [1, 2], [("G:1", "U:3")])

    assert refused.value.message == MSG_IDENTITIES_TOO_LARGE
    assert isinstance(refused.value, SyncCountedFailure)  # shown to the admin, counted
    assert state() == before
    assert not AuthIdentity.objects.filter(provider_identifier="U:3").exists()


def test_group_breaker_refuses_the_whole_sync(provider):
    sync(provider, range(1, 3), range(1, 3))
    before = state()

    with pytest.raises(SyncRefused) as refused:
        sync(provider, range(1, 4), [1])  # a new user, and 1 of 2 groups gone

    assert refused.value.message == MSG_GROUPS_TOO_LARGE
    assert state() == before


def test_large_directory_breaker_at_25_percent(provider):
    sync(provider, range(1, 101))
    with pytest.raises(SyncRefused):
        sync(provider, range(26, 101))  # 25 of 100 gone
    result = sync(provider, range(25, 101))  # 24 of 100 gone
    assert result.identities_deleted == 24


# --- §2.5 groups ----------------------------------------------------------------------------------


def test_groups_are_renamed_in_place_and_names_need_not_be_unique(provider):
    sync(provider, [1], [group(1, "Group:Same"), group(2, "Group:Same")])
    g1 = ActorGroup.objects.get(provider=provider, provider_identifier="G:1")

    result = sync(provider, [1], [group(1, "Group:Renamed"), group(2, "Group:Same")])

    assert (result.groups_inserted, result.groups_updated, result.groups_upserted) == (0, 1, 1)
    g1_after = ActorGroup.objects.get(pk=g1.pk)
    assert g1_after.name == "Group:Renamed" and g1_after.inserted_at == g1.inserted_at


def test_gone_group_is_hard_deleted_with_memberships_and_policies(provider):
    sync(provider, [1], range(1, 4), [("G:1", "U:1"), ("G:3", "U:1")])
    doomed = ActorGroup.objects.get(provider=provider, provider_identifier="G:3")
    policy = PolicyFactory(account=provider.account, actor_group=doomed)

    result = sync(provider, [1], range(1, 3), [("G:1", "U:1")])  # 1 of 3 = 33 % < 50 %

    assert (result.groups_deleted, result.memberships_deleted) == (1, 0)
    assert not ActorGroup.objects.filter(pk=doomed.pk).exists()
    assert not Policy.objects.filter(pk=policy.pk).exists()
    assert members(provider) == {("G:1", "U:1")}
    assert ChangeLog.objects.filter(table="policies", op="delete").exists()


def test_groups_of_other_providers_and_static_groups_are_left_alone(provider):
    other = ProviderFactory(
        account=provider.account,
        adapter=AuthProvider.Adapter.OKTA,
        provisioner=AuthProvider.Provisioner.CUSTOM,
    )
    static = ActorGroup.objects.create(
        account=provider.account, name="Group:1", type="static", created_by="system"
    )
    sync(other, [1], [1], [("G:1", "U:1")])
    sync(provider, [1], range(1, 4), [("G:1", "U:1")])

    result = sync(provider, [1], [2, 3])  # G:1 of `provider` gone

    assert result.groups_deleted == 1
    assert members(other) == {("G:1", "U:1")}
    assert ActorGroup.objects.filter(provider=other, provider_identifier="G:1").exists()
    assert ActorGroup.objects.filter(pk=static.pk).exists()


# --- §2.6 memberships -----------------------------------------------------------------------------


def test_memberships_follow_upstream(provider):
    sync(provider, range(1, 4), range(1, 3), [("G:1", "U:1"), ("G:1", "U:2")])
    result = sync(provider, range(1, 4), range(1, 3), [("G:1", "U:1"), ("G:2", "U:3")])
    assert (result.memberships_inserted, result.memberships_deleted) == (1, 1)
    assert members(provider) == {("G:1", "U:1"), ("G:2", "U:3")}


def test_no_change_resync_writes_and_publishes_nothing(provider):
    users = [user(n) for n in range(1, 6)]
    groups = [group(1), group(2)]
    tuples = [("G:1", "U:1"), ("G:2", "U:2")]
    sync(provider, users, groups, tuples)
    log_before = ChangeLog.objects.count()

    with CaptureQueriesContext(connection) as queries:
        result = sync(provider, users, groups, tuples)

    assert not result.changed
    assert (result.identities, result.groups) == (5, 2)
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE")
    ]
    assert writes == []
    assert ChangeLog.objects.count() == log_before
    assert len(queries.captured_queries) <= 8  # a handful of reads, whatever the size


def test_a_failure_in_the_memberships_step_leaves_nothing_applied(provider):
    sync(provider, range(1, 3), [1], [("G:1", "U:1")])
    before = state()

    with pytest.raises(ValueError):
        # New users and groups pass, then a malformed membership tuple fails the last step.
        sync(provider, range(1, 4), range(1, 3), [("G:2", "U:3"), ("G:1", "U:1", "extra")])

    assert state() == before
    assert not AuthIdentity.objects.filter(provider_identifier="U:3").exists()
    assert not ActorGroup.objects.filter(provider_identifier="G:2").exists()


def test_a_database_error_in_the_groups_step_leaves_nothing_applied(provider):
    sync(provider, range(1, 3), [1], [("G:1", "U:1")])
    before = state()

    with pytest.raises(Exception, match="NUL"):
        # PostgreSQL refuses NUL characters in text: the group name fails at INSERT time.
        sync(provider, range(1, 4), [group(1), group(2, "Bad\x00name")], [("G:1", "U:3")])

    assert state() == before


def _stream_seq(account_id: Any) -> int:
    value: Any = redis.Redis.from_url(settings.REDIS_URL).get(stream.seq_key(account_id))
    return int(value or 0)


@pytest.mark.django_db(transaction=True)
def test_a_sync_is_one_device_stream_message_and_a_no_change_sync_none(provider):
    account_id = provider.account_id
    seq = _stream_seq(account_id)
    tuples = [(f"G:{n % 5}", f"U:{n}") for n in range(1, 101)]

    sync(provider, range(1, 101), range(5), tuples)
    assert _stream_seq(account_id) == seq + 1  # 100 users, 5 groups, 200 memberships: one burst

    sync(provider, range(1, 101), range(5), tuples)
    assert _stream_seq(account_id) == seq + 1


def test_a_large_first_sync_takes_a_bounded_number_of_statements(provider):
    users = range(1, 2001)
    tuples = [(f"G:{n % 20}", f"U:{n}") for n in users]

    with CaptureQueriesContext(connection) as queries:
        result = sync(provider, users, range(20), tuples)

    assert (result.identities_inserted, result.memberships_inserted) == (2000, 2000)
    assert ActorGroupMembership.objects.filter(account_id=provider.account_id).count() == 4000
    assert len(queries.captured_queries) < 40


# --- live: a connected client gets the grant of a synced membership ------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_live_client_receives_the_resource_granted_by_a_synced_membership(
    live,  # noqa: F811 (the fixture imported above)
) -> None:
    """The admin's client is connected; one sync adds 30 users, a group and the admin's
    membership of a synced group that a policy grants r3 with: the client gets r3 once."""

    def setup() -> tuple[ClientWorld, AuthProvider]:
        cw = client_world()
        everyone_group(cw.account)
        google = ProviderFactory(
            account=cw.account,
            adapter=AuthProvider.Adapter.GOOGLE_WORKSPACE,
            provisioner=AuthProvider.Provisioner.CUSTOM,
        )
        IdentityFactory(
            actor=cw.w.actor, account=cw.account, provider=google, provider_identifier="U:admin"
        )
        admin = DirectoryIdentity("U:admin", cw.w.actor.name, "admin@example.com")
        provider_sync_apply(provider=google, identities=[admin], groups=[group(1)], memberships=[])
        s3 = SiteFactory(account=cw.account, name="S3")
        r3 = cw.resource(s3, name="r3", address="r3.example.com", address_description="three")
        cw.grant(r3, group=ActorGroup.objects.get(provider=google, provider_identifier="G:1"))
        cw.extra.update(s3=s3, r3=r3, admin=admin)
        return cw, google

    cw, google = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r3, admin = joined.device, cw.extra["r3"], cw.extra["admin"]
    async with device:
        result = await run_sync(
            provider_sync_apply,
            provider=google,
            identities=[admin, *(user(n) for n in range(1, 31))],
            groups=[group(1), group(2)],
            memberships=[("G:1", "U:admin"), *(("G:2", f"U:{n}") for n in range(1, 31))],
        )
        assert (result.identities_inserted, result.memberships_inserted) == (30, 31)
        assert await device.recv() == push("resource_created_or_updated", view(r3, cw.extra["s3"]))
        await device.expect_nothing(0.5)
