"""Directory sync scenarios of billing_sync_jobs.md §6 (31-46) end to end: a provider is synced
through `provider_sync_run` (or the beat tick) with its real adapter talking HTTP to the local
fakes (google_graph_fake.py, fakes.py); nothing of ours is patched. The scenarios whose parts
are already covered end to end elsewhere are mapped in docs/billing_sync_jobs.md §6.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_httpserver import HTTPServer

from accounts.models import (
    Actor,
    ActorGroup,
    ActorGroupMembership,
    AuthIdentity,
    AuthProvider,
    Token,
)
from accounts.services.providers import provider_connect
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
    everyone_group,
)
from directory_sync import tasks
from directory_sync.selectors.runs import providers_due_for_sync
from directory_sync.services.runs import SYNC_ERROR_SUBJECT, provider_sync_run
from directory_sync.tests.fakes import (  # noqa: F401 (fixtures)
    OktaFake,
    WorkOSFake,
    okta_fixture,
    workos_fixture,
)
from directory_sync.tests.google_graph_fake import DIRECTORY, GoogleFake, GraphFake, fixture
from firezone import stream
from firezone.models import ChangeLog
from resources.models import Policy
from resources.tests.factories import PolicyFactory

pytestmark = pytest.mark.django_db

A = AuthProvider.Adapter
ADMIN_SUB = "ADMIN_SUB_1"
OU_ENGINEERING = "OU:id:03ph8a2z1enx4lx"
OU_DEVELOPERS = "OU:id:03ph8a2z3k1b7qz"
USERS = f"{DIRECTORY}/users"


@pytest.fixture
def google(httpserver: HTTPServer, settings: Any) -> GoogleFake:
    fake = GoogleFake(httpserver)
    settings.GOOGLE_ADMIN_API_BASE = fake.url
    settings.GOOGLE_TOKEN_ENDPOINT = f"{fake.url}/token"
    settings.DIRECTORY_SYNC_HTTP_TIMEOUT = (2.0, 5.0)
    return fake


@pytest.fixture
def graph(httpserver: HTTPServer, settings: Any) -> GraphFake:
    fake = GraphFake(httpserver)
    settings.MS_GRAPH_API_BASE = fake.url
    settings.DIRECTORY_SYNC_HTTP_TIMEOUT = (2.0, 5.0)
    return fake


def google_provider(fake: GoogleFake, *, key: bool = True, **fields: Any) -> AuthProvider:
    account = AccountFactory()
    everyone_group(account)
    config: dict[str, Any] = {"client_id": "cid", "client_secret": "secret"}
    if key:
        config["service_account_json_key"] = fake.service_account_key()
    return ProviderFactory(
        account=account,
        name="Google",
        adapter=A.GOOGLE_WORKSPACE,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config=config,
        adapter_state={"access_token": "ADMIN_OAUTH_TOKEN", "userinfo": {"sub": ADMIN_SUB}},
        **fields,
    )


def admin_with_email(provider: AuthProvider, address: str) -> Actor:
    email_provider = ProviderFactory(account=provider.account, name="Email")
    actor = ActorFactory(account=provider.account, admin=True)
    IdentityFactory(
        actor=actor, account=provider.account, provider=email_provider, provider_identifier=address
    )
    return actor


def identities(provider: AuthProvider) -> dict[str, AuthIdentity]:
    return {
        i.provider_identifier: i
        for i in AuthIdentity.objects.filter(provider=provider).select_related("actor")
    }


def snapshot(provider: AuthProvider) -> dict[Any, Any]:
    return {
        i.pk: (i.provider_state, i.actor.updated_at, i.actor.last_synced_at)
        for i in identities(provider).values()
    }


def members(provider: AuthProvider) -> set[tuple[str, str]]:
    pids = {i.actor_id: pid for pid, i in identities(provider).items()}
    return {
        (m.group.provider_identifier or "", pids[m.actor_id])
        for m in ActorGroupMembership.objects.filter(group__provider=provider).select_related(
            "group"
        )
    }


def synced_groups(provider: AuthProvider) -> dict[str, str]:
    return {
        g.provider_identifier or "": g.name for g in ActorGroup.objects.filter(provider=provider)
    }


def users_page(*ids: str) -> dict[str, Any]:
    """A one-page users answer with the fixture's users `ids` (no next page)."""
    users = fixture("google_users_list")["users"] + fixture("google_users_list_page2")["users"]
    return {"kind": "admin#directory#users", "users": [u for u in users if u["id"] in ids]}


def okta_jwt(exp: float) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part({'sub': 'admin', 'exp': int(exp)})}.c2ln"


# --- Google ---------------------------------------------------------------------------------------


def test_31_google_service_account_token(google: GoogleFake) -> None:
    provider = google_provider(google)
    assert provider_sync_run(provider=provider).outcome == "synced"
    (form,) = google.token_forms
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    directory_calls = [r for r, _ in google.server.log if r.path.startswith(DIRECTORY)]
    assert directory_calls
    assert {r.headers["Authorization"] for r in directory_calls} == {
        "Bearer GOOGLE_0AUTH_ACCESS_TOKEN"
    }


def test_31_google_without_key_uses_the_admin_token(google: GoogleFake) -> None:
    provider = google_provider(google, key=False)
    assert provider_sync_run(provider=provider).outcome == "synced"
    assert google.token_forms == []
    directory_calls = [r for r, _ in google.server.log if r.path.startswith(DIRECTORY)]
    assert {r.headers["Authorization"] for r in directory_calls} == {"Bearer ADMIN_OAUTH_TOKEN"}


def test_31_google_token_endpoint_401(google: GoogleFake) -> None:
    google.fail("/token", 401, "google_token_error_401.json")
    provider = google_provider(google)
    run = provider_sync_run(provider=provider)
    assert run.outcome == "failed"
    assert [r for r, _ in google.server.log if r.path.startswith(DIRECTORY)] == []
    provider.refresh_from_db()
    assert provider.last_sync_error == "Failed to fetch access token"
    assert provider.last_syncs_failed == 1
    assert provider.sync_disabled_at is None


def test_32_google_first_sync(google: GoogleFake) -> None:
    provider = google_provider(google)
    before = timezone.now()
    assert provider_sync_run(provider=provider).outcome == "synced"

    assert synced_groups(provider) == {
        "G:GROUP_ID1": "Group:Infrastructure",
        "G:GROUP_ID2": "Group:Engineering",
        OU_ENGINEERING: "OrgUnit:Engineering",
        OU_DEVELOPERS: "OrgUnit:Developers",
    }
    for group in ActorGroup.objects.filter(provider=provider):
        assert (group.type, group.created_by) == ("static", "provider")
    found = identities(provider)
    assert set(found) == {"USER_ID1", "USER_ID2", "USER_ID3", "USER_ID4"}
    brian = found["USER_ID1"]
    assert brian.provider_state == {"userinfo": {"email": "b@firez.xxx"}}
    assert brian.email == "b@firez.xxx"
    assert brian.actor.name == "Brian Manifold"
    assert brian.actor.last_synced_at is not None and brian.actor.last_synced_at >= before
    assert members(provider) == {
        ("G:GROUP_ID1", "USER_ID1"),
        ("G:GROUP_ID1", "USER_ID4"),  # not the suspended USER_ID3, the nested group, the customer
        (OU_DEVELOPERS, "USER_ID1"),  # /Engineering/Developers: the unit and its parent
        (OU_ENGINEERING, "USER_ID1"),
        (OU_ENGINEERING, "USER_ID2"),
        (OU_ENGINEERING, "USER_ID3"),
    }
    provider.refresh_from_db()
    assert provider.last_synced_at is not None and provider.last_synced_at >= before
    assert provider.last_syncs_failed == 0


def test_33_existing_identity_is_updated_in_place(google: GoogleFake) -> None:
    provider = google_provider(google)
    actor = ActorFactory(account=provider.account, name="Old Name")
    existing = IdentityFactory(
        actor=actor,
        account=provider.account,
        provider=provider,
        provider_identifier="USER_ID1",
        email="old@firez.xxx",
        provider_state={"userinfo": {"email": "old@firez.xxx"}},
    )
    assert provider_sync_run(provider=provider).outcome == "synced"
    updated = identities(provider)["USER_ID1"]
    assert updated.pk == existing.pk
    assert updated.email == "b@firez.xxx"
    assert updated.provider_state == {"userinfo": {"email": "b@firez.xxx"}}
    assert updated.actor.pk == actor.pk
    assert updated.actor.name == "Brian Manifold"
    assert updated.actor.last_synced_at is not None


def test_34_stale_memberships_groups_and_identities_are_removed(google: GoogleFake) -> None:
    provider = google_provider(google)
    assert provider_sync_run(provider=provider).outcome == "synced"
    found = identities(provider)
    # A second identity of USER_ID4's actor (at another provider) keeps the actor alive; the
    # synced identity USER_ID3 goes, with its browser token.
    jamil = found["USER_ID4"].actor
    IdentityFactory(actor=jamil, account=provider.account, provider_identifier="jamil@x.test")
    gone = found["USER_ID3"]
    token = Token.objects.create(
        type=Token.Type.BROWSER,
        account=provider.account,
        actor=gone.actor,
        identity=gone,
        secret_salt="s",
        secret_hash="h",
        created_by="system",
    )
    doomed = ActorGroup.objects.get(provider=provider, provider_identifier="G:GROUP_ID2")
    policy = PolicyFactory(account=provider.account, actor_group=doomed)

    # Upstream now: USER_ID3 gone (1 of 4), GROUP_ID2 gone and GROUP_ID3 new (1 of 4 groups),
    # GROUP_ID1 lost USER_ID4, GROUP_ID3 has USER_ID4.
    google.fail(USERS, 200, users_page("USER_ID1", "USER_ID2", "USER_ID4"))
    groups = fixture("google_groups_list")
    groups["groups"][1].update(id="GROUP_ID3", name="Security")
    google.fail(f"{DIRECTORY}/groups", 200, groups)
    google.fail(
        f"{DIRECTORY}/groups/GROUP_ID1/members",
        200,
        {"members": [{"id": "USER_ID1", "type": "USER", "status": "ACTIVE"}]},
    )
    google.fail(
        f"{DIRECTORY}/groups/GROUP_ID3/members",
        200,
        {"members": [{"id": "USER_ID4", "type": "USER", "status": "ACTIVE"}]},
    )
    run = provider_sync_run(provider=provider)
    assert run.outcome == "synced", run.message

    assert set(identities(provider)) == {"USER_ID1", "USER_ID2", "USER_ID4"}
    assert not Token.objects.filter(pk=token.pk).exists()
    assert not ActorGroup.objects.filter(pk=doomed.pk).exists()
    assert not Policy.objects.filter(pk=policy.pk).exists()
    assert synced_groups(provider)["G:GROUP_ID3"] == "Group:Security"
    assert members(provider) == {
        ("G:GROUP_ID1", "USER_ID1"),
        ("G:GROUP_ID3", "USER_ID4"),
        (OU_DEVELOPERS, "USER_ID1"),
        (OU_ENGINEERING, "USER_ID1"),
        (OU_ENGINEERING, "USER_ID2"),
    }
    assert Actor.objects.filter(pk=jamil.pk).exists()


def test_resync_without_upstream_change_writes_nothing(google: GoogleFake) -> None:
    """Issue 16: a second sync with nothing new upstream writes no row of the directory and
    records no change; only the provider's own bookkeeping (`last_synced_at`) is updated."""
    provider = google_provider(google)
    assert provider_sync_run(provider=provider).outcome == "synced"
    log_before = ChangeLog.objects.count()
    rows_before = snapshot(provider)

    with CaptureQueriesContext(connection) as queries:
        run = provider_sync_run(provider=provider)

    assert run.outcome == "synced" and not run.result.changed
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE")
    ]
    table = AuthProvider._meta.db_table
    assert writes and all(sql.lstrip().startswith(f'UPDATE "{table}"') for sql in writes), writes
    assert ChangeLog.objects.count() == log_before
    assert snapshot(provider) == rows_before


@pytest.mark.django_db(transaction=True)
def test_resync_without_upstream_change_publishes_nothing(google: GoogleFake) -> None:
    """The same, committed: no device-stream message for the second run."""
    provider = google_provider(google)
    client = redis.Redis.from_url(django_settings.REDIS_URL)

    def seq() -> int:
        value: Any = client.get(stream.seq_key(provider.account_id))
        return int(value or 0)

    start = seq()
    assert provider_sync_run(provider=provider).outcome == "synced"
    assert seq() == start + 1
    assert provider_sync_run(provider=provider).outcome == "synced"
    assert seq() == start + 1


def test_36_deletion_above_the_breaker_changes_nothing_and_is_shown(google: GoogleFake) -> None:
    """Issue 16 / §6.36 through a real adapter: the deletion is refused, nothing is written, and
    (our decision) the refusal is a counted failure shown on the provider."""
    provider = google_provider(google)
    assert provider_sync_run(provider=provider).outcome == "synced"
    provider.refresh_from_db()
    synced_at = provider.last_synced_at
    before = (set(identities(provider)), synced_groups(provider), members(provider))
    log_before = ChangeLog.objects.count()

    google.fail(USERS, 200, users_page("USER_ID1"))  # 3 of 4 gone: 75 % > 50 %
    run = provider_sync_run(provider=provider)

    assert (run.outcome, run.message) == ("failed", "Sync deletion of identities too large")
    assert (set(identities(provider)), synced_groups(provider), members(provider)) == before
    assert ChangeLog.objects.count() == log_before
    provider.refresh_from_db()
    assert provider.last_sync_error == "Sync deletion of identities too large"
    assert provider.last_syncs_failed == 1
    assert provider.last_synced_at is None and synced_at is not None
    assert provider.sync_disabled_at is None


def test_37_google_403_then_500(google: GoogleFake) -> None:
    provider = google_provider(google)
    google.fail(USERS, 403, "google_error_403.json")
    provider_sync_run(provider=provider)
    provider.refresh_from_db()
    assert provider.last_synced_at is None
    assert provider.last_syncs_failed == 1
    assert provider.last_sync_error == fixture("google_error_403")["error"]["message"]
    assert provider.sync_disabled_at is None

    google.fail(USERS, 500, b"")
    provider_sync_run(provider=provider)
    provider.refresh_from_db()
    assert provider.last_syncs_failed == 2
    assert provider.last_sync_error == "Google API is temporarily unavailable"


def test_38_google_401_disables_emails_and_reconnect_enables(google: GoogleFake) -> None:
    provider = google_provider(google)
    admin_with_email(provider, "admin@example.com")
    google.fail(USERS, 401, "google_error_401.json")

    assert tasks.sync_google_workspace() == 1  # the tick (eager Celery) runs it
    provider.refresh_from_db()
    assert provider.sync_disabled_at is not None
    assert provider.last_syncs_failed == 1
    assert provider.last_sync_error == fixture("google_error_401")["error"]["message"]
    (message,) = mail.outbox
    assert message.subject == SYNC_ERROR_SUBJECT
    assert message.to == ["admin@example.com"]
    assert "failed to sync 1 time(s)" in message.body
    # The next tick does not select it, whatever the back-off.
    AuthProvider.objects.filter(pk=provider.pk).update(
        last_sync_attempt_at=timezone.now() - timedelta(days=1)
    )
    assert tasks.sync_google_workspace() == 0

    provider_connect(provider=provider, adapter_state=provider.adapter_state)
    provider.refresh_from_db()
    assert provider.sync_disabled_at is None and provider.disabled_at is None
    assert (provider.last_syncs_failed, provider.last_sync_error) == (0, None)
    assert provider.pk in set(
        providers_due_for_sync(adapter=A.GOOGLE_WORKSPACE).values_list("pk", flat=True)
    )


# --- Microsoft Entra ------------------------------------------------------------------------------


def entra_provider() -> AuthProvider:
    account = AccountFactory()
    everyone_group(account)
    return ProviderFactory(
        account=account,
        adapter=A.MICROSOFT_ENTRA,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_state={"access_token": "GRAPH_TOKEN"},
    )


def test_42_entra_sync(graph: GraphFake) -> None:
    provider = entra_provider()
    assert provider_sync_run(provider=provider).outcome == "synced"
    requests = graph.requests("/v1.0/users")
    assert len(requests) == 2  # @odata.nextLink followed
    assert all(r.args.get("$filter") == "accountEnabled eq true" for r in requests)
    found = identities(provider)
    assert len(found) == 3
    john = found["8fbddd1b-0e73-4cd0-ad38-2acea67814ee"]
    assert john.email == "jdoe@example.onmicrosoft.com"  # userPrincipalName
    engineering = "G:962f077e-caa2-4873-9d7d-a37cd58c06f5"
    # The member with accountEnabled false has no membership.
    assert members(provider) == {
        (engineering, "8fbddd1b-0e73-4cd0-ad38-2acea67814ee"),
        (engineering, "0b69cee0-b884-4cad-b7e3-ddd4d53034fb"),
    }


def test_42_entra_401_and_500(graph: GraphFake) -> None:
    provider = entra_provider()
    admin_with_email(provider, "admin@example.com")
    graph.fail("/v1.0/users", 401, "graph_error_401.json")
    assert provider_sync_run(provider=provider).outcome == "unauthorized"
    provider.refresh_from_db()
    assert provider.sync_disabled_at is not None
    assert provider.last_sync_error == fixture("graph_error_401")["error"]["message"]
    assert len(mail.outbox) == 1  # at once, not after 10

    other = entra_provider()
    graph.fail("/v1.0/users", 500, b"")
    provider_sync_run(provider=other)
    other.refresh_from_db()
    assert other.last_sync_error == "Microsoft Graph API is temporarily unavailable"
    assert other.last_syncs_failed == 1 and other.sync_disabled_at is None


# --- Okta -----------------------------------------------------------------------------------------


def okta_provider(okta: OktaFake, token: str | None = None) -> AuthProvider:
    account = AccountFactory()
    everyone_group(account)
    return ProviderFactory(
        account=account,
        adapter=A.OKTA,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config={
            "client_id": "okta-client",
            "client_secret": "okta-secret",
            "okta_account_domain": "example.okta.com",
            "api_base_url": okta.url,
        },
        adapter_state={"access_token": token or okta_jwt(time.time() + 3600)},
    )


def test_43_okta_sync(okta: OktaFake) -> None:
    stale = okta_jwt(time.time() + 60)  # < now + 2 min: re-read from the database
    provider = okta_provider(okta, token=stale)
    fresh = okta_jwt(time.time() + 3600)
    AuthProvider.objects.filter(pk=provider.pk).update(adapter_state={"access_token": fresh})

    assert provider_sync_run(provider=provider).outcome == "synced"
    assert {r.headers["Authorization"] for r in okta.requests} == {f"Bearer {fresh}"}
    users = [r for r in okta.requests if r.path == "/api/v1/users"]
    assert len(users) == 2  # link rel="next" followed
    active = {u["id"] for u in fixture("okta_users") if u["status"] != "SUSPENDED"}
    assert set(identities(provider)) == active
    assert {pid for _, pid in members(provider)} <= active


def test_43_okta_401_is_counted_not_disabling_and_500(okta: OktaFake) -> None:
    provider = okta_provider(okta)
    okta.fail("/api/v1/users", 401, fixture("okta_error_401"))
    assert provider_sync_run(provider=provider).outcome == "failed"
    provider.refresh_from_db()
    assert provider.last_sync_error == "E0000011 => Invalid token provided"
    assert provider.last_syncs_failed == 1 and provider.sync_disabled_at is None

    okta.fail("/api/v1/users", 500, "")
    provider_sync_run(provider=provider)
    provider.refresh_from_db()
    assert provider.last_sync_error == "Okta API is temporarily unavailable"
    assert provider.last_syncs_failed == 2


# --- JumpCloud ------------------------------------------------------------------------------------


def jumpcloud_provider(workos_org: dict[str, Any] | None = None) -> AuthProvider:
    account = AccountFactory()
    everyone_group(account)
    return ProviderFactory(
        account=account,
        adapter=A.JUMPCLOUD,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config={"client_id": "jc", "client_secret": "s", "workos_org": workos_org or {}},
        adapter_state={"access_token": "a"},
    )


def test_44_jumpcloud_sync(workos: WorkOSFake) -> None:
    provider = jumpcloud_provider(workos.add_organization())
    assert provider_sync_run(provider=provider).outcome == "synced"
    found = identities(provider)
    users = [u for page in workos.user_pages for u in page["data"]]
    assert set(found) == {u["idp_id"] for u in users}
    for user in users:
        assert found[user["idp_id"]].email == user["username"]
    groups = synced_groups(provider)
    assert all(pid.startswith("G:directory_group_") for pid in groups)
    assert len(members(provider)) == sum(len(u["groups"]) for u in users)


def test_44_jumpcloud_without_directory_or_workos_down(workos: WorkOSFake) -> None:
    org = workos.add_organization()
    workos.directories[org["id"]] = []
    provider = jumpcloud_provider(org)
    provider_sync_run(provider=provider)
    provider.refresh_from_db()
    assert provider.last_syncs_failed == 0 and provider.last_sync_error is None
    assert identities(provider) == {}

    workos.directories[org["id"]] = fixture("workos_directories")["data"]
    for status in (401, 500):
        workos.fail("/directory_users", status, {"message": "nope"})
        provider_sync_run(provider=provider)
        provider.refresh_from_db()
        assert provider.last_sync_error == "Error connecting to WorkOS"
    assert provider.last_syncs_failed == 2
