"""Settings → Account (portal.md §4.9) and Settings → DNS (§4.11) with the Django test client."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Account
from accounts.tests.factories import ActorFactory, IdentityFactory
from accounts.tests.portal import UA, Acme, inject_session, make_acme

pytestmark = pytest.mark.django_db

DNS = "/acme/settings/dns"
SD = "account[config][search_domain]"


def _row(index: int, field: str) -> str:
    return f"account[config][clients_upstream_dns][{index}][{field}]"


@pytest.fixture
def acme() -> Acme:
    return make_acme()


@pytest.fixture
def client(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _text(response: Any) -> str:
    return html.unescape(response.content.decode())


def _reload(acme: Acme) -> Account:
    return Account.objects.get(pk=acme.account.pk)


PATHS = [
    "/acme/settings/account",
    "/acme/settings/account/edit",
    "/acme/settings/account/notifications/edit",
    DNS,
]


def test_regular_user_gets_404(acme: Acme) -> None:
    user = ActorFactory(account=acme.account, name="Joe")
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, identity)
    for path in PATHS:
        assert c.get(path).status_code == 404, path
        assert c.post(path, {"action": "delete_account", "name": "Evil"}).status_code == 404
    assert _reload(acme).name == "Acme"
    assert mail.outbox == []


def test_signed_out_is_sent_to_sign_in() -> None:
    make_acme()
    for path in PATHS:
        response = Client(HTTP_USER_AGENT=UA).get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/acme?redirect_to=")


def test_admin_pages_load_htmx_and_the_live_socket(client: Client, acme: Acme) -> None:
    """htmx and its ws extension come from our own origin (nonce'd); the socket element gets its
    `ws-connect` from portal.js. No session poll any more (portal.md §3.13, §7)."""
    text = client.get("/acme/settings/account").content.decode()
    assert 'src="/static/django_htmx/htmx-2.min.js" defer nonce="' in text
    assert 'src="/static/django_htmx/ext/hx-ws-2.min.js" defer nonce="' in text
    socket = f'<div id="live-socket" hidden hx-ext="ws" data-live-account="{acme.account.pk}">'
    assert socket in text
    assert "sign_in/session" not in text
    # Public pages get htmx (sign-up validates with it) but no socket.
    public = Client(HTTP_USER_AGENT=UA).get("/acme").content.decode()
    assert "django_htmx/htmx-2.min.js" in public
    assert "hx-ws" not in public and "live-socket" not in public


# --- account -------------------------------------------------------------------------------------


def test_account_page(client: Client, acme: Acme) -> None:
    response = client.get("/acme/settings/account")
    assert response.status_code == 200
    text = _text(response)
    assert "<title>Account · Firezone</title>" in text
    assert "Account Settings" in text and "Edit Account" in text
    assert 'id="account"' in text
    for label in ("Account Name", "Account ID", "Account Slug"):
        assert f"<th>{label}</th>" in text
    assert str(acme.account.pk) in text and ">acme</code>" in text
    assert "Copy to clipboard" in text
    assert "Notification Type" in text and "Gateway Upgrade Available" in text
    assert '<span class="badge badge-ok">Enabled</span>' in text
    assert "Edit Notifications" in text
    assert "Terminate account" in text and "Schedule your account for deletion." in text
    assert "Confirm Account Deletion" in text
    assert (
        "This account <strong>acme</strong> will be scheduled for complete deletion. "
        "Are you sure you want to delete your account?" in text
    )
    assert 'href="/acme/settings/account/edit"' in text
    assert 'href="/acme/settings/account/notifications/edit"' in text


def test_delete_account_request(client: Client, acme: Acme) -> None:
    response = client.post("/acme/settings/account", {"action": "delete_account"})
    assert response.status_code == 302 and response["Location"] == "/acme/settings/account"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "ACCOUNT DELETE REQUEST - acme"
    assert message.to == ["support@firezone.dev"]
    assert message.reply_to == ["admin@acme.test"]
    assert "REQUEST TO DELETE ACCOUNT!" in message.body
    assert str(acme.account.pk) in message.body and str(acme.admin.pk) in message.body
    text = _text(client.get("/acme/settings/account"))
    assert "A request has been sent to delete your account." in text
    assert "Delete Requested" in text and "Schedule your account for deletion." not in text
    # Not persisted: a reload offers the button again (§9 item 21).
    text = _text(client.get("/acme/settings/account"))
    assert "Delete Requested" not in text and "Schedule your account for deletion." in text
    assert _reload(acme).disabled_at is None


def test_delete_account_request_failure(client: Client, monkeypatch: Any) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", boom)
    response = client.post("/acme/settings/account", {"action": "delete_account"}, follow=True)
    text = _text(response)
    assert "The request to delete your account could not be sent." in text
    assert "Delete Requested" not in text


def test_unknown_event_is_ignored(client: Client) -> None:
    response = client.post("/acme/settings/account", {"action": "nope"})
    assert response.status_code == 302
    assert mail.outbox == []


def test_edit_account(client: Client, acme: Acme) -> None:
    response = client.get("/acme/settings/account/edit")
    text = _text(response)
    assert "<title>Edit Account · Firezone</title>" in text
    assert "Edit Account Acme" in text and 'placeholder="Account Name"' in text
    assert 'value="Acme"' in text and "Save" in text
    assert "slug" not in text.lower().split("<main", 1)[1].split("</form>", 1)[0]

    response = client.post("/acme/settings/account/edit", {"name": "Acme Corp"})
    assert response.status_code == 302 and response["Location"] == "/acme/settings/account"
    account = _reload(acme)
    assert account.name == "Acme Corp" and account.slug == "acme"
    assert "<td>Acme Corp</td>" in _text(client.get("/acme/settings/account"))


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "can't be blank"),
        ("ab", "should be at least 3 character(s)"),
        ("x" * 65, "should be at most 64 character(s)"),
    ],
)
def test_edit_account_validation(client: Client, acme: Acme, name: str, error: str) -> None:
    response = client.post("/acme/settings/account/edit", {"name": name})
    assert response.status_code == 200
    assert error in _text(response)
    assert _reload(acme).name == "Acme"


def test_edit_account_ignores_slug(client: Client, acme: Acme) -> None:
    client.post("/acme/settings/account/edit", {"name": "Acme 2", "slug": "hacked"})
    account = _reload(acme)
    assert account.name == "Acme 2" and account.slug == "acme"


def test_edit_notifications(client: Client, acme: Acme) -> None:
    path = "/acme/settings/account/notifications/edit"
    text = _text(client.get(path))
    assert "Edit account notifications" in text
    assert "Outdated Gateways" in text
    assert 'id="outdated_gateway_enabled_true"' in text
    assert 'id="outdated_gateway_enabled_false"' in text
    assert 'value="true" checked' in text

    response = client.post(path, {"outdated_gateway_enabled": "false"})
    assert response.status_code == 302 and response["Location"] == "/acme/settings/account"
    config = _reload(acme).config
    assert config["notifications"]["outdated_gateway"]["enabled"] is False
    text = _text(client.get("/acme/settings/account"))
    assert '<span class="badge badge-err">Disabled</span>' in text
    assert 'value="false" checked' in _text(client.get(path))

    client.post(path, {"outdated_gateway_enabled": "true"})
    assert _reload(acme).config["notifications"]["outdated_gateway"]["enabled"] is True


def test_edit_notifications_keeps_last_notified(client: Client, acme: Acme) -> None:
    account = acme.account
    account.config = {
        "notifications": {"outdated_gateway": {"enabled": True, "last_notified": "2025-01-01"}}
    }
    account.save()
    client.post("/acme/settings/account/notifications/edit", {"outdated_gateway_enabled": "false"})
    setting = _reload(acme).config["notifications"]["outdated_gateway"]
    assert setting == {"enabled": False, "last_notified": "2025-01-01"}


def test_edit_notifications_validation(client: Client, acme: Acme) -> None:
    path = "/acme/settings/account/notifications/edit"
    response = client.post(path, {"outdated_gateway_enabled": "maybe"})
    assert response.status_code == 200
    assert "note-error" in _text(response)
    assert _reload(acme).config["notifications"]["outdated_gateway"]["enabled"] is True


# --- DNS -----------------------------------------------------------------------------------------


def test_dns_page_empty(client: Client) -> None:
    response = client.get(DNS)
    assert response.status_code == 200
    text = _text(response)
    assert "<title>DNS · Firezone</title>" in text
    assert "DNS Settings" in text
    assert (
        "Configure the search domain and upstream resolvers used by devices when the Firezone "
        "Client is connected." in text
    )
    assert "https://www.firezone.dev/kb/deploy/dns?utm_source=product" in text
    assert f'name="{SD}"' in text and 'placeholder="E.g. example.com"' in text
    assert "No upstream resolvers have been configured." in text
    assert "New Resolver" in text and "Save DNS Settings" in text
    assert "<strong>always</strong> use Firezone's internal DNS" in text


def test_dns_page_shows_config(client: Client, acme: Acme) -> None:
    account = acme.account
    account.config = {
        **account.config,
        "search_domain": "corp.example.com",
        "clients_upstream_dns": [
            {"protocol": "ip_port", "address": "1.1.1.1"},
            {"protocol": "ip_port", "address": "2606:4700:4700::1111"},
        ],
    }
    account.save()
    text = _text(client.get(DNS))
    assert 'value="corp.example.com"' in text
    assert 'value="1.1.1.1"' in text and 'value="2606:4700:4700::1111"' in text
    assert "in the order they are listed below" in text
    assert text.index('value="1.1.1.1"') < text.index('value="2606:4700:4700::1111"')
    assert '<option value="dns_over_tls" disabled>DNS over TLS</option>' in text
    assert '<option value="dns_over_http" disabled>DNS over HTTPS</option>' in text


def test_dns_save(client: Client, acme: Acme) -> None:
    data = {
        SD: "example.com",
        _row(0, "protocol"): "ip_port",
        _row(0, "address"): "8.8.8.8",
        _row(1, "protocol"): "ip_port",
        _row(1, "address"): "2001:4860:4860::8888",
    }
    response = client.post(DNS, data)
    assert response.status_code == 302 and response["Location"] == DNS
    config = _reload(acme).config
    assert config["search_domain"] == "example.com"
    assert config["clients_upstream_dns"] == [
        {"protocol": "ip_port", "address": "8.8.8.8"},
        {"protocol": "ip_port", "address": "2001:4860:4860::8888"},
    ]
    assert config["notifications"]["outdated_gateway"]["enabled"] is True
    text = _text(client.get(DNS))
    assert "Save successful!" in text and "Success!" in text
    assert 'value="example.com"' in text


def test_dns_save_clears(client: Client, acme: Acme) -> None:
    account = acme.account
    account.config = {
        **account.config,
        "search_domain": "corp.example.com",
        "clients_upstream_dns": [{"protocol": "ip_port", "address": "1.1.1.1"}],
    }
    account.save()
    assert client.post(DNS, {SD: ""}).status_code == 302
    config = _reload(acme).config
    assert config["search_domain"] is None
    assert config["clients_upstream_dns"] == []


@pytest.mark.parametrize(
    ("domain", "error"),
    [
        ("example", "must be a valid fully-qualified domain name"),
        (".example.com", "must not start with a dot"),
        ("example..com", "must not contain consecutive dots"),
        ("a" * 64 + ".com", "each label must not exceed 63 characters"),
        ("a." * 127 + "com", "must not exceed 255 characters"),
    ],
)
def test_dns_search_domain_validation(client: Client, acme: Acme, domain: str, error: str) -> None:
    response = client.post(DNS, {SD: domain})
    assert response.status_code == 200
    text = _text(response)
    assert error in text
    assert f'value="{domain}"' in text
    assert "search_domain" not in _reload(acme).config


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("", "can't be blank"),
        ("not-an-ip", "must be a valid IP address"),
        ("100.64.0.1", "cannot be in the CIDR 100.64.0.0/10"),
    ],
)
def test_dns_resolver_validation(client: Client, acme: Acme, address: str, error: str) -> None:
    data = {SD: "", _row(0, "protocol"): "ip_port", _row(0, "address"): address}
    response = client.post(DNS, data)
    assert response.status_code == 200
    text = _text(response)
    assert error in text
    assert 'id="dns-errors-resolver-0-address"><p class="field-error">' in text
    assert not _reload(acme).config.get("clients_upstream_dns")


def test_dns_resolver_protocol_validation(client: Client) -> None:
    data = {_row(0, "protocol"): "dns_over_tls", _row(0, "address"): "1.1.1.1"}
    text = _text(client.post(DNS, data))
    assert "this type of DNS provider is not supported yet" in text
    data = {_row(0, "protocol"): "", _row(0, "address"): "1.1.1.1"}
    text = _text(client.post(DNS, data))
    assert """id="dns-errors-resolver-0-protocol"><p class="field-error">can't be blank""" in text


def test_dns_resolvers_must_be_unique(client: Client, acme: Acme) -> None:
    data = {
        _row(0, "protocol"): "ip_port",
        _row(0, "address"): "8.8.8.8",
        _row(1, "protocol"): "ip_port",
        _row(1, "address"): "8.8.8.8:53",
    }
    response = client.post(DNS, data)
    assert response.status_code == 200
    assert 'id="dns-errors-resolvers"><p class="field-error">all addresses must be unique' in (
        _text(response)
    )
    assert not _reload(acme).config.get("clients_upstream_dns")


def test_dns_add_and_remove_rows_without_saving(client: Client, acme: Acme) -> None:
    data = {SD: "example.com", _row(0, "protocol"): "ip_port", _row(0, "address"): "8.8.8.8"}
    response = client.post(DNS, {**data, "action": "add_resolver"})
    assert response.status_code == 200
    text = _text(response)
    assert 'value="8.8.8.8"' in text and f'name="{_row(1, "address")}"' in text
    assert 'class="field-error"' not in text  # an added row is not validated yet
    assert "search_domain" not in _reload(acme).config

    data[_row(1, "protocol")] = "ip_port"
    data[_row(1, "address")] = "1.1.1.1"
    text = _text(client.post(DNS, {**data, "action": "remove_resolver:0"}))
    assert 'value="8.8.8.8"' not in text
    assert f'name="{_row(0, "address")}" value="1.1.1.1"' in text
    assert f'name="{_row(1, "address")}"' not in text
    # A bad index changes nothing.
    text = _text(client.post(DNS, {**data, "action": "remove_resolver:x"}))
    assert 'value="8.8.8.8"' in text and 'value="1.1.1.1"' in text


def test_dns_validate_only(client: Client, acme: Acme) -> None:
    # An htmx POST fired by one input (HX-Trigger-Name) validates as you type, saving nothing.
    htmx = {"HX-Request": "true", "HX-Trigger-Name": SD}
    response = client.post(DNS, {SD: "example"}, headers=htmx)
    assert response.status_code == 200
    assert "must be a valid fully-qualified domain name" in _text(response)
    response = client.post(DNS, {SD: "example.com"}, headers=htmx)
    assert response.status_code == 200
    assert 'class="field-error"' not in _text(response)
    assert "search_domain" not in _reload(acme).config  # nothing saved
    # The row buttons through htmx (HX-Trigger-Name = "action") are row events, not validation.
    button = {"HX-Request": "true", "HX-Trigger-Name": "action"}
    text = _text(client.post(DNS, {SD: "example.com", "action": "add_resolver"}, headers=button))
    assert f'name="{_row(0, "address")}"' in text
    assert "search_domain" not in _reload(acme).config


def test_dns_row_order_follows_indexes(client: Client, acme: Acme) -> None:
    data = {
        _row(10, "protocol"): "ip_port",
        _row(10, "address"): "9.9.9.9",
        _row(2, "protocol"): "ip_port",
        _row(2, "address"): "1.1.1.1",
    }
    assert client.post(DNS, data).status_code == 302
    addresses = [e["address"] for e in _reload(acme).config["clients_upstream_dns"]]
    assert addresses == ["1.1.1.1", "9.9.9.9"]
