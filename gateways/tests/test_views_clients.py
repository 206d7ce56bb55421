"""Client pages (portal.md §4.7): list with its filters and presence, the client page with its
events (verify, remove verification, delete), and the rename page, with the Django test client.
Online status is real presence in Redis (a key prefix of each test's own)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Actor, Token
from accounts.tests.factories import AccountFactory, ActorFactory, IdentityFactory
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from firezone.web.client_os import os_of
from gateways import presence
from gateways.models import Client as Device
from gateways.tests.factories import ClientFactory, flow_for

pytestmark = pytest.mark.django_db

VERIFIED: dict[str, Any] = {
    "verified_at": timezone.now(),
    "verified_by": "system",
    "verified_by_subject": {"name": "System"},
}


@pytest.fixture(autouse=True)
def _presence_prefix(settings: Any) -> None:
    settings.PRESENCE_KEY_PREFIX = f"test-presence:{uuid.uuid4().hex}"


@pytest.fixture
def acme() -> Acme:
    return make_acme()


@pytest.fixture
def client(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _text(response: Any) -> str:
    return response.content.decode()


def _user(acme: Acme, name: str, *, admin: bool = False) -> Actor:
    actor = ActorFactory(account=acme.account, name=name, admin=admin)
    IdentityFactory(
        actor=actor,
        account=acme.account,
        provider=acme.email_provider,
        provider_identifier=f"{name.lower()}@acme.test",
    )
    return actor


def _token(actor: Actor, name: str | None = None) -> Token:
    return Token.objects.create(
        type="client",
        name=name,
        actor=actor,
        identity=actor.identities.first(),
        account=actor.account,
        secret_salt="salt",
        secret_hash="hash",
        created_by="system",
        expires_at=timezone.now() + timedelta(days=7),
    )


def _connect(device: Device, token: Token | None = None) -> None:
    """Put a client online the way the client socket does (both presence topics)."""
    conn = uuid.uuid4().hex
    meta = {"token_id": str(token.pk)} if token else {}

    async def track() -> None:
        try:
            await presence.track(
                presence.account_clients_topic(device.account_id), str(device.pk), conn, {}
            )
            await presence.track(
                presence.actor_clients_topic(device.actor_id), str(device.pk), conn, meta
            )
        finally:
            await presence.aclose()

    async_to_sync(track)()


# --- access --------------------------------------------------------------------------------------


def test_regular_user_gets_404_everywhere(acme: Acme) -> None:
    user = _user(acme, "Joe")
    device = ClientFactory(actor=user)
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, user.identities.get())
    for path in ("/acme/clients", f"/acme/clients/{device.pk}", f"/acme/clients/{device.pk}/edit"):
        response = c.get(path)
        assert response.status_code == 404, path
        assert "Sorry, we couldn't find this page." in _text(response)
    assert c.post(f"/acme/clients/{device.pk}", {"action": "delete"}).status_code == 404
    assert Device.objects.filter(pk=device.pk).exists()


def test_signed_out_is_sent_to_sign_in() -> None:
    make_acme()
    response = Client(HTTP_USER_AGENT=UA).get("/acme/clients")
    assert response.status_code == 302
    assert response["Location"].startswith("/acme?redirect_to=")


def test_other_accounts_client_is_404(client: Client) -> None:
    foreign = ClientFactory(actor=ActorFactory(account=AccountFactory()), name="foreign")
    for path in (f"/acme/clients/{foreign.pk}", f"/acme/clients/{foreign.pk}/edit"):
        assert client.get(path).status_code == 404, path
    for action in ("verify", "remove_verification", "delete"):
        response = client.post(f"/acme/clients/{foreign.pk}", {"action": action})
        assert response.status_code == 404
    assert client.post(f"/acme/clients/{foreign.pk}/edit", {"name": "x"}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.name == "foreign" and foreign.verified_at is None


@pytest.mark.parametrize("bad", ["nope", "123", str(uuid.uuid4())])
def test_malformed_or_unknown_id_is_404(client: Client, bad: str) -> None:
    assert client.get(f"/acme/clients/{bad}").status_code == 404
    assert client.get(f"/acme/clients/{bad}/edit").status_code == 404
    assert client.post(f"/acme/clients/{bad}", {"action": "delete"}).status_code == 404


# --- list ----------------------------------------------------------------------------------------


def test_list_renders_rows(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane", admin=True)
    laptop = ClientFactory(actor=jane, name="jane-laptop", **VERIFIED)
    phone = ClientFactory(
        actor=ActorFactory(account=acme.account, name="Build", service_account=True),
        name="ci-box",
        last_seen_user_agent="iOS/12.5 (iPhone) connlib/1.3.0",
    )
    _connect(laptop)

    response = client.get("/acme/clients")
    assert response.status_code == 200
    text = _text(response)
    assert "<title>Clients · Firezone</title>" in text
    assert "Clients are end-user devices and servers that access your protected Resources." in text
    assert "https://www.firezone.dev/kb/deploy/clients?utm_source=product" in text
    assert f'data-live-topics="account_clients:{acme.account.pk}" data-live-mode="reload"' in text
    assert f'id="client-{laptop.pk}"' in text and f'id="client-{phone.pk}"' in text
    assert f'href="/acme/clients/{laptop.pk}">jane-laptop</a> <span class="verified-shield"' in text
    assert f'href="/acme/clients/{phone.pk}">ci-box</a></td>' in text
    assert f'href="/acme/actors/{jane.pk}">Jane</a> (admin)' in text
    assert "Build</a> (service account)" in text
    assert 'title="Apple iOS 12.5"' in text and 'title="Apple macOS 14.4"' in text
    row_laptop = text.split(f'id="client-{laptop.pk}"')[1].split("</tr>")[0]
    row_phone = text.split(f'id="client-{phone.pk}"')[1].split("</tr>")[0]
    assert ">Online<" in row_laptop and ">Offline<" in row_phone
    assert "Verification Status" in text and "Not Verified" in text
    assert "Presence" in text and "Search by Client Name or Actor Name" in text


def test_list_empty(client: Client) -> None:
    assert "No Actors have signed in from any Client." in _text(client.get("/acme/clients"))


def test_list_filters(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    online = ClientFactory(actor=jane, name="jane-laptop")
    offline = ClientFactory(actor=_user(acme, "Bob"), name="bob-phone", **VERIFIED)
    _connect(online)

    def rows(**params: str) -> tuple[bool, bool]:
        text = _text(
            client.get("/acme/clients", {f"clients_filter[{k}]": v for k, v in params.items()})
        )
        return f"client-{online.pk}" in text, f"client-{offline.pk}" in text

    assert rows() == (True, True)
    assert rows(presence="online") == (True, False)
    assert rows(presence="offline") == (False, True)
    assert rows(verification="verified") == (False, True)
    assert rows(verification="not_verified") == (True, False)
    assert rows(name="laptop") == (True, False)
    assert rows(name="bob") == (False, True)  # the actor's name
    assert rows(presence="online", verification="verified") == (False, False)
    text = _text(client.get("/acme/clients", {"clients_filter[presence]": "online"}))
    assert 'value="online" checked' in text


def test_list_bad_filter_resets(client: Client) -> None:
    response = client.get("/acme/clients", {"clients_filter[presence]": "away"})
    assert response.status_code == 302 and response["Location"] == "/acme/clients"
    follow = client.get(response["Location"])
    assert "The page was reset due to invalid value of a pagination filter." in _text(follow)


def test_list_orders(client: Client, acme: Acme) -> None:
    now = timezone.now()
    old = ClientFactory(actor=acme.admin, name="zz-old", last_seen_at=now - timedelta(days=2))
    new = ClientFactory(actor=acme.admin, name="aa-new", last_seen_at=now)
    text = _text(client.get("/acme/clients"))  # last seen, newest first
    assert text.index(f"client-{new.pk}") < text.index(f"client-{old.pk}")
    text = _text(client.get("/acme/clients", {"clients_order_by": "clients:desc:name"}))
    assert text.index(f"client-{old.pk}") < text.index(f"client-{new.pk}")


def _count_queries(client: Client, path: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, params or {})
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    _connect(ClientFactory(actor=_user(acme, "U0")))
    client.get("/acme/clients")  # warm the session
    presence_filter = {"clients_filter[presence]": "online"}
    few = _count_queries(client, "/acme/clients")
    few_online = _count_queries(client, "/acme/clients", presence_filter)
    for i in range(1, 50):
        device = ClientFactory(actor=_user(acme, f"U{i}"))
        if i % 2:
            _connect(device)
    assert _count_queries(client, "/acme/clients") == few
    assert _count_queries(client, "/acme/clients", presence_filter) == few_online
    offline = {"clients_filter[presence]": "offline"}
    assert _count_queries(client, "/acme/clients", offline) == few_online


# --- detail --------------------------------------------------------------------------------------


def test_client_page_offline(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    device = ClientFactory(
        actor=jane,
        name="jane-laptop",
        external_id="ext-123",
        device_serial="SER-1",
        identifier_for_vendor="IFV-1",
        last_seen_remote_ip_location_city="Berlin",
        last_seen_remote_ip_location_region="DE",
    )
    response = client.get(f"/acme/clients/{device.pk}")
    assert response.status_code == 200
    text = _text(response)
    assert "<title>Client jane-laptop · Firezone</title>" in text
    assert "Client Details" in text
    assert f'href="/acme/clients/{device.pk}/edit">Edit Client</a>' in text
    assert f'data-live-topics="actor_clients:{jane.pk}"' in text
    assert "Database ID assigned to this Client" in text and str(device.pk) in text
    assert ">Offline<" in text
    assert "Client is offline - sign in method unavailable" in text
    assert f'href="/acme/actors/{jane.pk}">Jane</a>' in text
    assert "1.3.0" in text and "macOS/14.4 apple-client/1.3.0" in text
    assert "Device Attributes" in text
    assert "Information about the device that the Client is running on." in text
    assert "ext-123" in text and "SER-1" in text and "IFV-1" in text
    assert "Device UUID" not in text
    assert "App installation ID" in text
    assert "This value is reset if the Firezone application is reinstalled." in text
    assert "203.0.113.1" in text and "(Berlin, DE)" in text
    assert "Not Verified" in text and "Apple macOS 14.4" in text
    assert "Confirm verification of Client" in text
    assert "Are you sure you want to verify this Client?" in text
    assert "Remove verification" not in text
    assert "Recent Connections" in text and "No activity to display." in text
    assert "Recent connections opened by this Client to access a Resource." in text
    assert "Delete Client" in text and "Confirm deletion of client" in text
    assert "the verification status won&#x27;t carry over." in text or "won't carry over." in text
    assert "disable the owning actor</a> instead." in text


def test_client_page_online_with_identity(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    device = ClientFactory(actor=jane, name="jane-laptop")
    token = _token(jane)
    _connect(device, token)
    text = _text(client.get(f"/acme/clients/{device.pk}"))
    assert ">Online<" in text
    assert "jane@acme.test" in text
    assert f'href="/acme/actors/{jane.pk}#tokens-{token.pk}">show tokens</a>' in text


def test_client_page_online_service_account(client: Client, acme: Acme) -> None:
    sa = ActorFactory(account=acme.account, name="Backend", service_account=True)
    device = ClientFactory(actor=sa, name="build-box")
    token = _token(sa, name="ci")
    _connect(device, token)
    text = _text(client.get(f"/acme/clients/{device.pk}"))
    assert f'href="/acme/actors/{sa.pk}#tokens-{token.pk}">token ci</a>' in text


def test_client_page_recent_connections(client: Client, acme: Acme) -> None:
    device = ClientFactory(actor=_user(acme, "Jane"), name="jane-laptop")
    flow = flow_for(device)
    text = _text(client.get(f"/acme/clients/{device.pk}"))
    assert f'id="flows-{flow.pk}"' in text
    assert f'href="/acme/policies/{flow.policy_id}"' in text
    assert f'href="/acme/gateways/{flow.gateway_id}"' in text


def test_detail_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    device = ClientFactory(actor=_user(acme, "Jane"))
    path = f"/acme/clients/{device.pk}"
    flow_for(device)
    client.get(path)
    few = _count_queries(client, path)
    for _ in range(12):
        flow_for(device)
    assert _count_queries(client, path) == few


def test_verify_and_remove_verification(client: Client, acme: Acme) -> None:
    device = ClientFactory(actor=_user(acme, "Jane"), name="jane-laptop")
    path = f"/acme/clients/{device.pk}"
    response = client.post(path, {"action": "verify"})
    assert response.status_code == 302 and response["Location"] == path
    device.refresh_from_db()
    assert device.verified_at is not None and device.verified_by == "identity"
    text = _text(client.get(path))
    assert "Verified" in text and "by Admin" in text
    assert "Remove verification" in text and "Confirm removal of Client verification" in text
    assert (
        "Are you sure you want to remove verification of this Client? It will no longer be able "
        "to access Resources using Policies that require verification."
    ) in text
    assert 'id="verify-client"' not in text
    assert 'class="verified-shield"' in _text(client.get("/acme/clients"))

    flow = flow_for(device)
    response = client.post(path, {"action": "remove_verification"})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.verified_at is None
    assert not type(flow).objects.filter(pk=flow.pk).exists()
    assert "Not Verified" in _text(client.get(path))


def test_delete_client(client: Client, acme: Acme) -> None:
    device = ClientFactory(actor=_user(acme, "Jane"), name="jane-laptop")
    response = client.post(f"/acme/clients/{device.pk}", {"action": "delete"})
    assert response.status_code == 302 and response["Location"] == "/acme/clients"
    assert not Device.objects.filter(pk=device.pk).exists()
    text = _text(client.get("/acme/clients"))
    assert "Success!" in text and "Client was deleted." in text


def test_unknown_event_just_reloads(client: Client, acme: Acme) -> None:
    device = ClientFactory(actor=acme.admin)
    response = client.post(f"/acme/clients/{device.pk}", {"action": "nope"})
    assert response.status_code == 302 and response["Location"] == f"/acme/clients/{device.pk}"
    assert Device.objects.filter(pk=device.pk).exists()


# --- edit ----------------------------------------------------------------------------------------


def test_edit_client(client: Client, acme: Acme) -> None:
    device = ClientFactory(actor=acme.admin, name="old-name")
    path = f"/acme/clients/{device.pk}/edit"
    text = _text(client.get(path))
    assert "<title>Edit Client old-name · Firezone</title>" in text
    assert "Editing client: <code>old-name</code>" in text
    assert 'placeholder="Full Name"' in text and 'value="old-name"' in text
    assert f'href="/acme/clients/{device.pk}">old-name</a>' in text

    response = client.post(path, {"name": "  new-name "})
    assert response.status_code == 302 and response["Location"] == f"/acme/clients/{device.pk}"
    device.refresh_from_db()
    assert device.name == "new-name"


@pytest.mark.parametrize(
    ("name", "error"),
    [("", "can&#x27;t be blank"), ("x" * 256, "should be at most 255 character(s)")],
)
def test_edit_client_errors(client: Client, acme: Acme, name: str, error: str) -> None:
    device = ClientFactory(actor=acme.admin, name="old-name")
    response = client.post(f"/acme/clients/{device.pk}/edit", {"name": name})
    assert response.status_code == 200
    assert error in _text(response)
    device.refresh_from_db()
    assert device.name == "old-name"


# --- operating systems ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "kind", "label"),
    [
        ("iOS/12.5 (iPhone) connlib/1.3.0", "ios", "Apple iOS 12.5"),
        ("macOS/14.4 apple-client/1.3.0", "macos", "Apple macOS 14.4"),
        ("Mac OS/14.5 (arm64) connlib/1.4.0", "macos", "Apple macOS 14.5"),
        ("Windows/10.0.22631 gui-client/1.4.0", "windows", "Microsoft Windows 10.0.22631"),
        ("Android/14 android-client/1.4.0", "android", "Google Android 14"),
        ("Ubuntu/22.04 headless-client/1.4.0", "ubuntu", "Ubuntu 22.04"),
        ("Debian/12 headless-client/1.4.0", "debian", "Debian 12"),
        ("Manjaro/23.1 gui-client/1.4.0", "manjaro", "Manjaro 23.1"),
        ("Linux/6.1 headless-client/1.4.0", "linux", "Linux 6.1"),
        ("Haiku/1 something", "other", "Haiku 1"),
        ("", "other", "Unknown"),
    ],
)
def test_os_of(user_agent: str, kind: str, label: str) -> None:
    found = os_of(user_agent)
    assert (found.kind, found.label) == (kind, label)
