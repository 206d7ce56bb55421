"""The audit log's reading side (issue 18): the selector's rule (device events out, admin
actions on device rows in), filters, tenant isolation, keyset paging, query counts, the page, the
History sections, and the streamed exports equal to the page."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import AsyncRequestFactory, Client
from django.test.utils import CaptureQueriesContext

from accounts.selectors.audit import (
    AuditFilters,
    audit_entries,
    audit_export,
    audit_page,
    config_changes,
)
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    subject_for,
)
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from accounts.views import audit_log as audit_log_views
from firezone.models import ChangeLog
from firezone.origin import kind_of
from firezone.redaction import REDACTED
from firezone.web.audit import field_changes, present
from resources.services.policies import policy_delete
from resources.tests.factories import PolicyFactory, ResourceFactory, SiteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(name="acme")
def acme_fixture() -> Acme:
    return make_acme()


@pytest.fixture(name="admin_client")
def admin_client_fixture(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _subject(actor: Any, **extra: Any) -> dict[str, Any]:
    return {
        "actor_id": str(actor.pk),
        "actor_name": actor.name,
        "actor_type": actor.type,
        "identity_id": None,
        "token_id": None,
        **extra,
    }


def log(
    account: Any,
    table: str,
    op: str,
    *,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    subject: dict[str, Any] | None = None,
) -> ChangeLog:
    return ChangeLog.objects.create(
        account_id=account.pk, table=table, op=op, old_data=old, data=new, subject=subject
    )


def _lsns(rows: Any) -> list[int]:
    return [r.lsn for r in rows]


# --- the rule ------------------------------------------------------------------------------------


def test_device_events_are_left_out_and_admin_actions_on_device_rows_stay(acme: Acme) -> None:
    account, admin = acme.account, acme.admin
    user = ActorFactory(account=account, name="Jane")
    me = _subject(admin, kind="actor", context="browser")
    client_id, token_id = str(uuid.uuid4()), str(uuid.uuid4())
    client_row = {"id": client_id, "actor_id": str(user.pk), "name": "Jane's Mac"}
    session = {"id": token_id, "type": "browser", "actor_id": str(user.pk), "secret_hash": REDACTED}
    out = [
        log(account, "flows", "insert", new={"id": str(uuid.uuid4())}, subject=_subject(user)),
        # sign-in: its session token, an OTP token, its use
        log(account, "tokens", "insert", new=session, subject=None),
        log(account, "tokens", "insert", new={**session, "type": "email"}, subject=None),
        log(account, "tokens", "delete", old=session, subject=_subject(user)),  # sign-out
        log(account, "tokens", "delete", old=session, subject=None),  # expiry job
        log(account, "tokens", "delete", old=session, subject={"kind": "system", "job": "expiry"}),
        log(
            account,
            "gateways",
            "update",
            old={"id": "g", "name": "gw", "public_key": "a"},
            new={"id": "g", "name": "gw", "public_key": "b"},
            subject={"kind": "system"},
        ),
        # the client socket: connect upsert (old shape and new shape), last seen
        log(account, "clients", "insert", new=client_row, subject=_subject(user)),
        log(
            account,
            "clients",
            "update",
            old=client_row,
            new={**client_row, "public_key": "k2"},
            subject=_subject(user),
        ),
        log(
            account,
            "clients",
            "update",
            old=client_row,
            new={**client_row, "public_key": "k3"},
            subject=_subject(user, kind="actor", context="client"),
        ),
        log(
            account,
            "gateways",
            "insert",
            new={"id": str(uuid.uuid4()), "name": "gw"},
            subject=None,
        ),
        log(
            account,
            "resources",
            "update",
            old={"id": "r", "name": "x", "updated_at": "1"},
            new={"id": "r", "name": "x", "updated_at": "2"},
            subject=me,
        ),
        log(
            account,
            "auth_identities",
            "update",
            old={"id": "i", "provider_state": {}, "last_seen_at": None},
            new={"id": "i", "provider_state": {"code_hash": REDACTED}, "last_seen_at": "now"},
            subject=None,
        ),
        log(
            account,
            "clients",
            "update",
            old=client_row,
            new=client_row,
            subject=_subject(user, context="gateway_group"),
        ),
    ]
    kept = [
        log(account, "clients", "delete", old=client_row, subject=me),  # admin deletes a client
        log(account, "tokens", "delete", old=session, subject=me),  # admin revokes a session
        log(
            account,
            "tokens",
            "insert",
            new={"id": str(uuid.uuid4()), "type": "api_client", "actor_id": "a"},
            subject=me,
        ),
        log(
            account,
            "clients",
            "update",
            old=client_row,
            new={**client_row, "name": "Renamed"},
            subject=me,
        ),
        log(account, "policies", "delete", old={"id": str(uuid.uuid4())}, subject=me),
        log(account, "actors", "insert", new={"id": str(uuid.uuid4()), "name": "Bob"}),
        log(
            account,
            "actor_groups",
            "insert",
            new={"id": str(uuid.uuid4()), "name": "Synced"},
            subject={"kind": "identity_provider", "provider_name": "Okta", "context": "sync"},
        ),
        log(
            account,
            "resources",
            "delete",
            old={"id": str(uuid.uuid4()), "name": "Old"},
            subject={"kind": "staff", "staff_user": "root", "remote_ip": "192.0.2.9"},
        ),
    ]
    found = _lsns(config_changes(account.pk).order_by("lsn"))
    assert found == _lsns(kept)
    assert not set(found) & set(_lsns(out))


def test_another_accounts_rows_never_appear(acme: Acme) -> None:
    other = AccountFactory()
    theirs = log(other, "policies", "delete", old={"id": str(uuid.uuid4())})
    mine = log(acme.account, "policies", "delete", old={"id": str(uuid.uuid4())})
    assert _lsns(audit_entries(acme.account.pk, AuditFilters())) == [mine.lsn]
    # Their object's id as a filter: nothing.
    by_object = AuditFilters(object_id=(theirs.old_data or {})["id"])
    assert list(audit_entries(acme.account.pk, by_object)) == []


def test_filters(acme: Acme) -> None:
    account = acme.account
    bob = ActorFactory(account=account, name="Bob", admin=True)
    rid = str(uuid.uuid4())
    a = log(
        account, "resources", "insert", new={"id": rid, "name": "DB"}, subject=_subject(acme.admin)
    )
    b = log(
        account,
        "resources",
        "update",
        old={"id": rid, "name": "DB"},
        new={"id": rid, "name": "DB2"},
        subject=_subject(bob),
    )
    c = log(account, "policies", "insert", new={"id": str(uuid.uuid4())}, subject=_subject(bob))
    ChangeLog.objects.filter(pk=a.pk).update(inserted_at="2020-01-01T00:00:00Z")

    def lsns(**kw: Any) -> list[int]:
        return _lsns(audit_entries(account.pk, AuditFilters(**kw)))

    assert lsns() == [c.lsn, b.lsn, a.lsn]
    assert lsns(actor_id=str(bob.pk)) == [c.lsn, b.lsn]
    assert lsns(table="resources") == [b.lsn, a.lsn]
    assert lsns(object_id=rid) == [b.lsn, a.lsn]
    assert lsns(since=b.inserted_at) == [c.lsn, b.lsn]
    assert lsns(until=b.inserted_at) == [a.lsn]


def test_keyset_both_ways_and_one_query_per_page(
    acme: Acme, django_assert_num_queries: Any
) -> None:
    rows = [
        log(acme.account, "actors", "insert", new={"id": str(uuid.uuid4()), "name": f"A{i}"})
        for i in range(7)
    ]
    newest_first = list(reversed(_lsns(rows)))
    with django_assert_num_queries(1):
        first = audit_page(acme.account.pk, AuditFilters(), size=3)
    assert _lsns(first.rows) == newest_first[:3] and first.prev_before is None
    with django_assert_num_queries(1):
        second = audit_page(acme.account.pk, AuditFilters(), after=first.next_after, size=3)
    assert _lsns(second.rows) == newest_first[3:6]
    third = audit_page(acme.account.pk, AuditFilters(), after=second.next_after, size=3)
    assert _lsns(third.rows) == newest_first[6:] and third.next_after is None
    back = audit_page(acme.account.pk, AuditFilters(), before=third.prev_before, size=3)
    assert _lsns(back.rows) == newest_first[3:6]
    assert back.prev_before is not None and back.next_after == second.next_after
    home = audit_page(acme.account.pk, AuditFilters(), before=back.prev_before, size=3)
    assert _lsns(home.rows) == newest_first[:3] and home.prev_before is None


def test_present_costs_one_query_per_table_not_per_row(
    acme: Acme, django_assert_num_queries: Any
) -> None:
    resources = [ResourceFactory(account=acme.account) for _ in range(5)]
    rows = [
        log(
            acme.account,
            "resources",
            "update",
            old={"id": str(r.pk), "name": "a"},
            new={"id": str(r.pk), "name": r.name},
            subject=_subject(acme.admin),
        )
        for r in resources
    ]
    # resources + actors (the subjects' links)
    with django_assert_num_queries(2):
        entries = present(acme.account, rows)
    assert all(e.object_url and e.who_url for e in entries)


def test_subject_shapes() -> None:
    assert kind_of(None) == "system"
    assert kind_of({"actor_id": "x", "actor_type": "api_client"}) == "api_client"
    assert kind_of({"actor_id": "x", "actor_type": "account_admin_user"}) == "actor"
    assert kind_of({"kind": "identity_provider", "provider_name": "Okta"}) == "identity_provider"
    assert kind_of({"kind": "system", "job": "sync"}) == "system"
    assert kind_of({"kind": "staff", "staff_user": "root"}) == "staff"


def test_who_reads_for_each_kind(acme: Acme) -> None:
    rid = str(uuid.uuid4())
    subjects = [
        None,
        {"kind": "system", "job": "firezone.tasks.audit_retention"},
        {
            "kind": "identity_provider",
            "provider_id": str(acme.email_provider.pk),
            "provider_name": "Okta",
        },
        {"kind": "staff", "staff_user": "root", "remote_ip": "192.0.2.9", "user_agent": "Firefox"},
        {**_subject(acme.admin), "kind": "actor", "remote_ip": "192.0.2.1", "user_agent": "Chrome"},
        {"actor_id": "x", "actor_name": "CI", "actor_type": "api_client"},  # old shape
    ]
    rows = [
        log(acme.account, "resources", "insert", new={"id": rid, "name": "R"}, subject=s)
        for s in subjects
    ]
    who = [(e.kind, e.who, e.who_detail, e.remote_ip) for e in present(acme.account, rows)]
    assert who == [
        ("system", "system", "", None),
        ("system", "system", "firezone.tasks.audit_retention", None),
        ("identity_provider", "Okta", "directory sync", None),
        ("staff", "root", "Django admin", "192.0.2.9"),
        ("actor", "Admin", "", "192.0.2.1"),
        ("api_client", "CI", "API client", None),
    ]


def test_redacted_values_read_redacted(acme: Acme) -> None:
    row = log(
        acme.account,
        "auth_providers",
        "update",
        old={"id": "p", "name": "Okta", "adapter_config": {"client_secret": REDACTED, "x": 1}},
        new={"id": "p", "name": "Okta", "adapter_config": {"client_secret": REDACTED, "x": 2}},
    )
    (change,) = field_changes(row)
    assert change.key == "adapter_config" and "redacted" in (change.new or "")
    token = log(
        acme.account,
        "tokens",
        "insert",
        new={"id": "t", "type": "api_client", "secret_hash": REDACTED},
    )
    assert {c.key: c.new for c in field_changes(token)}["secret_hash"] == "redacted"


# --- a real write: who deleted the policy ------------------------------------------------------


def test_policy_delete_by_an_admin_is_found(acme: Acme, admin_client: Client) -> None:
    policy = PolicyFactory(account=acme.account, description="DB access")
    policy_delete(subject=subject_for(acme.admin, identity=acme.admin_identity), policy=policy)
    response = admin_client.get("/acme/settings/audit_log", {"table": "policies"})
    assert response.status_code == 200
    (entry,) = response.context["entries"]
    assert (entry.who, entry.action, entry.object_type) == ("Admin", "Deleted", "Policy")
    assert entry.object_name == "DB access" and entry.object_url is None  # gone: no link
    assert 'data-audit-action="Deleted"' in response.content.decode()


# --- the page ------------------------------------------------------------------------------------


def test_page_is_for_admins_only(acme: Acme, admin_client: Client) -> None:
    assert admin_client.get("/acme/settings/audit_log").status_code == 200
    user = ActorFactory(account=acme.account, name="Jane")
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, identity)
    assert c.get("/acme/settings/audit_log").status_code == 404
    assert c.get("/acme/settings/audit_log/export.csv").status_code == 404


def test_page_shows_retention_and_menu(acme: Acme, admin_client: Client) -> None:
    text = admin_client.get("/acme/settings/audit_log").content.decode()
    assert "Kept for 365 days (since" in text
    assert 'href="/acme/settings/audit_log"' in text  # the settings menu


def test_bad_filter_shows_the_error(acme: Acme, admin_client: Client) -> None:
    response = admin_client.get("/acme/settings/audit_log", {"object": "not-a-uuid"})
    assert response.status_code == 200 and response.context["entries"] == []


# --- the History sections -------------------------------------------------------------------


def test_history_sections_render(acme: Acme, admin_client: Client) -> None:
    account = acme.account
    site = SiteFactory(account=account, name="HQ")
    resource = ResourceFactory(account=account, name="Wiki")
    group = GroupFactory(account=account, name="Eng")
    policy = PolicyFactory(account=account, resource=resource, actor_group=group)
    provider = acme.email_provider
    me = _subject(acme.admin)
    pages = {
        f"/acme/sites/{site.pk}": ("gateway_groups", site.pk),
        f"/acme/resources/{resource.pk}": ("resources", resource.pk),
        f"/acme/groups/{group.pk}": ("actor_groups", group.pk),
        f"/acme/policies/{policy.pk}": ("policies", policy.pk),
        f"/acme/actors/{acme.admin.pk}": ("actors", acme.admin.pk),
        f"/acme/settings/identity_providers/system/{provider.pk}": ("auth_providers", provider.pk),
    }
    for url, (table, pk) in pages.items():
        log(
            account,
            table,
            "update",
            old={"id": str(pk), "name": "old"},
            new={"id": str(pk), "name": f"new-{table}"},
            subject=me,
        )
        response = admin_client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        assert 'id="history"' in text, url
        assert f"new-{table}" in text, url
        assert f"/acme/settings/audit_log?table={table}&amp;object={pk}" in text, url


# --- the exports ---------------------------------------------------------------------------------


def _many(acme: Acme, n: int) -> None:
    ChangeLog.objects.bulk_create(
        ChangeLog(
            account_id=acme.account.pk,
            table="resources",
            op="update",
            old_data={"id": f"r{i}", "name": "a", "client_secret": REDACTED},
            data={"id": f"r{i}", "name": f"b{i}", "client_secret": REDACTED},
            subject=_subject(acme.admin, kind="actor", remote_ip="192.0.2.1", user_agent="UA"),
        )
        for i in range(n)
    )


def _stream_text(response: Any) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(cast(Iterator[bytes], response.streaming_content)).decode()


def test_exports_equal_the_pages_rows(acme: Acme, admin_client: Client) -> None:
    _many(acme, 12)
    log(acme.account, "policies", "insert", new={"id": str(uuid.uuid4()), "description": "p"})
    query = {"table": "resources"}
    page = admin_client.get("/acme/settings/audit_log", query).context["entries"]
    shown = [e.lsn for e in page]
    jsonl = _stream_text(admin_client.get("/acme/settings/audit_log/export.jsonl", query))
    records = [json.loads(line) for line in jsonl.splitlines()]
    assert [r["lsn"] for r in records] == shown
    assert records[0]["who"] == "Admin" and records[0]["remote_ip"] == "192.0.2.1"
    assert records[0]["action"] == "Updated" and records[0]["changes"]["name"]["old"] == "a"
    rows = list(
        csv.DictReader(
            io.StringIO(
                _stream_text(admin_client.get("/acme/settings/audit_log/export.csv", query))
            )
        )
    )
    assert [int(r["lsn"]) for r in rows] == shown
    assert rows[0]["object_type"] == "Resource"


def test_export_streams_lazily(acme: Acme, admin_client: Client) -> None:
    _many(acme, 5000)
    response = admin_client.get("/acme/settings/audit_log/export.jsonl")
    assert isinstance(response, StreamingHttpResponse)
    content = iter(cast(Iterator[bytes], response.streaming_content))
    first = next(content)  # one row read, the rest still in the database cursor
    assert json.loads(first)["who"] == "Admin"
    assert sum(1 for _ in content) == 4999
    # The selector hands out an iterator over a server-side cursor, not a list.
    rows = audit_export(acme.account.pk, AuditFilters(), chunk_size=100)
    assert not isinstance(rows, list) and next(rows).lsn


async def test_export_under_asgi_pulls_batches() -> None:
    """Under ASGI Django would read a sync iterator whole (`sync_to_async(list)`) before sending
    it: the export hands it an async iterator that pulls one batch at a time."""
    pulled: list[int] = []

    def lines() -> Iterator[str]:
        for i in range(5000):
            pulled.append(i)
            yield f"{i}\n"

    streamed = audit_log_views._streamed(AsyncRequestFactory().get("/"), lines())
    assert isinstance(streamed, AsyncIterator)
    first = await anext(streamed)
    assert first == "0\n" and len(pulled) == audit_log_views.STREAM_BATCH
    rest = [line async for line in streamed]
    assert len(rest) == 4999 and len(pulled) == 5000


def test_page_query_count_does_not_grow_with_rows(acme: Acme, admin_client: Client) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get("/acme/settings/audit_log").status_code == 200
        return len(ctx.captured_queries)

    def add(n: int) -> None:
        for _ in range(n):
            r = ResourceFactory(account=acme.account)
            image = {"id": str(r.pk), "name": r.name}
            log(acme.account, "resources", "insert", new=image, subject=_subject(acme.admin))

    add(1)
    queries()  # warm the session's caches
    one = queries()
    add(30)
    assert queries() == one


def test_history_uses_the_object_index(acme: Acme) -> None:
    """A detail page's History reads one object's rows, not the account's whole log."""
    _many(acme, 200)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_changelog")
        cursor.execute("SET LOCAL enable_seqscan = off")
    history = audit_entries(acme.account.pk, AuditFilters(object_id=str(uuid.uuid4())))[:10]
    assert "changelog_account_object" in history.explain()


def test_export_links_carry_the_filters(acme: Acme, admin_client: Client) -> None:
    text = admin_client.get("/acme/settings/audit_log", {"table": "policies"}).content.decode()
    assert 'href="/acme/settings/audit_log/export.csv?table=policies"' in text
    assert 'href="/acme/settings/audit_log/export.jsonl?table=policies"' in text
