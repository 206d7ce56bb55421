"""The outdated-gateway e-mail job (billing_sync_jobs.md §4.3, §4.4, §3.2 row 5) and the portal's
"New version available" marks, both reading the latest gateway version the refresher stored
(`firezone.component_versions`, fed here by a real local HTTP server answering Firezone's
releases JSON). Presence is real (Redis, a key prefix of this test); e-mails go to Django's
test outbox."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core import mail
from django.test import Client
from pytest_httpserver import HTTPServer

from accounts.models import Account
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
)
from accounts.tests.portal import ADMIN_EMAIL, UA, Acme, inject_session, make_acme
from firezone.component_versions import component_versions_refresh
from gateways import presence, tasks
from gateways.models import Gateway
from gateways.services.outdated_gateways import SUBJECT, outdated_gateways_notify
from gateways.tests.factories import GatewayFactory, SiteFactory
from tests.locks import held_elsewhere

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parents[2] / "tests/fixtures/external/firezone_releases.json"
RELEASES = json.loads(FIXTURE.read_text())  # gateway 1.4.17
# A Sunday and the next days (UTC).
SUNDAY = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _presence_prefix(settings: Any) -> None:
    settings.PRESENCE_KEY_PREFIX = f"test-presence:{uuid.uuid4().hex}"


@pytest.fixture
def releases(httpserver: HTTPServer, settings: Any) -> HTTPServer:
    """Firezone's `/api/releases` on a local port, already read once by the refresher."""
    settings.COMPONENT_VERSIONS_URL = httpserver.url_for("/api/releases")
    publish(httpserver, RELEASES["gateway"])
    return httpserver


def publish(server: HTTPServer, gateway_version: str) -> None:
    """A new gateway release appears at the endpoint and the refresher picks it up."""
    server.clear()
    server.expect_request("/api/releases").respond_with_json(
        {**RELEASES, "gateway": gateway_version}
    )
    assert component_versions_refresh().ok


@pytest.fixture
def acme() -> Acme:
    return make_acme()


def _online(*gateways: Gateway) -> None:
    """Register the gateways the way the gateway socket does (account and site topics)."""

    async def track() -> None:
        for gateway in gateways:
            await presence.track_many(
                f"conn-{gateway.pk}",
                [
                    (presence.account_gateways_topic(gateway.account_id), str(gateway.pk), {}),
                    (presence.group_gateways_topic(gateway.group_id), str(gateway.pk), {}),
                ],
            )
        await presence.aclose()

    async_to_sync(track)()


def _setting(account: Account) -> dict[str, Any]:
    account = Account.objects.get(pk=account.pk)
    return account.config["notifications"]["outdated_gateway"]


def _email_identity(acme: Acme, actor: Any, address: str) -> None:
    IdentityFactory(actor=actor, provider=acme.email_provider, provider_identifier=address)


def _outdated_online(acme: Acme, version: str = "1.3.2", name: str = "gw-old") -> Gateway:
    gateway = GatewayFactory(
        group=SiteFactory(account=acme.account, name="HQ"), name=name, last_seen_version=version
    )
    _online(gateway)
    return gateway


# --- the e-mail ---------------------------------------------------------------------------------


def test_outdated_online_gateways_are_mailed_to_the_admins(
    releases: HTTPServer, acme: Acme
) -> None:
    old = _outdated_online(acme)
    current = GatewayFactory(group=old.group, name="gw-current", last_seen_version="1.4.17")
    _online(current)
    # Another enabled admin (the same address in other case is mailed once), a disabled admin
    # and a plain user are not extra recipients.
    other_admin = ActorFactory(account=acme.account, admin=True)
    _email_identity(acme, other_admin, "second@acme.test")
    IdentityFactory(
        actor=other_admin,
        provider=ProviderFactory(account=acme.account, oidc=True),
        provider_identifier="idp-subject-1",
        email=ADMIN_EMAIL.upper(),
    )
    disabled = ActorFactory(account=acme.account, admin=True, disabled_at=SUNDAY)
    _email_identity(acme, disabled, "gone@acme.test")
    _email_identity(acme, ActorFactory(account=acme.account), "user@acme.test")

    run = outdated_gateways_notify(now=SUNDAY)

    assert run.notified_accounts == [str(acme.account.pk)] and run.messages == 2
    assert sorted(m.to[0] for m in mail.outbox) == [ADMIN_EMAIL, "second@acme.test"]
    message = mail.outbox[0]
    assert message.subject == SUBJECT == "Firezone Gateway Upgrade Available"
    assert len(message.to) == 1
    assert "The latest Firezone Gateway release is: 1.4.17" in message.body
    assert "- gw-old -> 1.3.2" in message.body and "gw-current" not in message.body
    assert "https://www.firezone.dev/changelog?tab=gateway" in message.body
    assert "/acme/sites" in message.body
    html = message.alternatives[0][0]  # type: ignore[attr-defined]
    assert '<span style="font-weight: 600">1.4.17</span>' in html and "gw-old -&gt; 1.3.2" in html
    setting = _setting(acme.account)
    assert setting["enabled"] is True
    assert datetime.fromisoformat(setting["last_notified"]) == SUNDAY
    assert setting["notified"] == [
        {"gateway_id": str(old.pk), "version": "1.3.2", "latest_version": "1.4.17"}
    ]


def test_notifications_turned_off_send_nothing(releases: HTTPServer, acme: Acme) -> None:
    Account.objects.filter(pk=acme.account.pk).update(
        config={"notifications": {"outdated_gateway": {"enabled": False}}}
    )
    _outdated_online(acme)
    assert outdated_gateways_notify(now=SUNDAY).notified_accounts == []
    assert mail.outbox == []
    assert "last_notified" not in _setting(acme.account)


def test_the_settings_page_switch_is_honoured(releases: HTTPServer, acme: Acme) -> None:
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, acme.admin_identity)
    path = "/acme/settings/account/notifications/edit"
    client.post(path, {"outdated_gateway_enabled": "false"})
    _outdated_online(acme)
    outdated_gateways_notify(now=SUNDAY)
    assert mail.outbox == []
    client.post(path, {"outdated_gateway_enabled": "true"})
    outdated_gateways_notify(now=SUNDAY)
    assert len(mail.outbox) == 1


def test_running_twice_sends_one_email(releases: HTTPServer, acme: Acme) -> None:
    _outdated_online(acme)
    outdated_gateways_notify(now=SUNDAY)
    outdated_gateways_notify(now=SUNDAY + timedelta(minutes=5))
    # Even past the 24-hour guard (next Sunday), the same gateway and versions are not re-sent.
    run = outdated_gateways_notify(now=SUNDAY + timedelta(days=7))
    assert run.notified_accounts == [] and len(mail.outbox) == 1


def test_a_new_release_makes_a_new_email(releases: HTTPServer, acme: Acme) -> None:
    gateway = _outdated_online(acme)
    outdated_gateways_notify(now=SUNDAY)
    publish(releases, "1.4.18")
    # Within 24 hours of the last e-mail the guard holds it back (§4.4) …
    outdated_gateways_notify(now=SUNDAY + timedelta(hours=1))
    assert len(mail.outbox) == 1
    # … then it goes out, with the new version.
    outdated_gateways_notify(now=SUNDAY + timedelta(days=7))
    assert len(mail.outbox) == 2
    assert "The latest Firezone Gateway release is: 1.4.18" in mail.outbox[1].body
    assert _setting(acme.account)["notified"] == [
        {"gateway_id": str(gateway.pk), "version": "1.3.2", "latest_version": "1.4.18"}
    ]
    # A gateway moving to another old version is news too.
    Gateway.objects.filter(pk=gateway.pk).update(last_seen_version="1.4.5")
    outdated_gateways_notify(now=SUNDAY + timedelta(days=14))
    assert len(mail.outbox) == 3 and "- gw-old -> 1.4.5" in mail.outbox[2].body


def test_a_new_outdated_gateway_lists_all_of_them(releases: HTTPServer, acme: Acme) -> None:
    first = _outdated_online(acme, name="gw-a")
    outdated_gateways_notify(now=SUNDAY)
    GatewayFactory(group=first.group, name="gw-b", last_seen_version="1.2.0")
    _online(*Gateway.objects.filter(name="gw-b"))
    outdated_gateways_notify(now=SUNDAY + timedelta(days=7))
    assert len(mail.outbox) == 2
    assert "- gw-a -> 1.3.2" in mail.outbox[1].body and "- gw-b -> 1.2.0" in mail.outbox[1].body
    assert len(_setting(acme.account)["notified"]) == 2


def test_only_online_gateways_of_user_sites_of_enabled_accounts(
    releases: HTTPServer, acme: Acme
) -> None:
    # offline
    GatewayFactory(group=SiteFactory(account=acme.account), last_seen_version="1.0.0")
    # the system Internet site
    internet = GatewayFactory(
        group=SiteFactory(account=acme.account, internet=True), last_seen_version="1.0.0"
    )
    # up to date, and unparseable versions are not flagged
    current = GatewayFactory(group=SiteFactory(account=acme.account), last_seen_version="1.4.17")
    odd = GatewayFactory(group=current.group, last_seen_version="nightly")
    # a disabled account
    disabled = AccountFactory(disabled_at=SUNDAY)
    admin = ActorFactory(account=disabled, admin=True)
    IdentityFactory(actor=admin)
    off = GatewayFactory(group=SiteFactory(account=disabled), last_seen_version="1.0.0")
    _online(internet, current, odd, off)
    assert outdated_gateways_notify(now=SUNDAY).notified_accounts == []
    assert mail.outbox == []


def test_sundays_only_in_production(releases: HTTPServer, acme: Acme, settings: Any) -> None:
    settings.OUTDATED_GATEWAY_EMAIL_SUNDAYS_ONLY = True
    _outdated_online(acme)
    assert outdated_gateways_notify(now=SUNDAY + timedelta(days=1)).skipped == "not Sunday (UTC)"
    assert mail.outbox == []
    # Sunday 00:30 in UTC is still Saturday in New York: UTC decides.
    assert outdated_gateways_notify(now=SUNDAY.replace(hour=0, minute=30)).messages == 1


def test_a_mail_failure_records_nothing_and_retries(
    releases: HTTPServer, acme: Acme, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _outdated_online(acme)
    # An SMTP server that refuses connections.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    assert outdated_gateways_notify(now=SUNDAY).notified_accounts == []
    assert "could not be sent" in caplog.text
    assert "last_notified" not in _setting(acme.account)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert outdated_gateways_notify(now=SUNDAY).messages == 1


def test_without_admin_address_nothing_is_recorded(releases: HTTPServer) -> None:
    account = AccountFactory()
    gateway = GatewayFactory(group=SiteFactory(account=account), last_seen_version="1.0.0")
    _online(gateway)
    assert outdated_gateways_notify(now=SUNDAY).notified_accounts == []
    assert "last_notified" not in _setting(account)


def test_the_task_runs_once_at_a_time(releases: HTTPServer, acme: Acme) -> None:
    _outdated_online(acme)
    assert (
        held_elsewhere("gateways.outdated_gateways_notify", tasks.outdated_gateways_notify) is None
    )
    assert mail.outbox == []
    result = tasks.outdated_gateways_notify()
    assert result is not None and result["messages"] == 1 and result["latest_version"] == "1.4.17"


# --- the portal marks ---------------------------------------------------------------------------


def _version_mark(client: Client, gateway: Gateway) -> str:
    text = client.get(f"/acme/sites/{gateway.group_id}/gateways").content.decode()
    match = re.search(rf'<tr id="gateway-{gateway.pk}">.*?</tr>', text, re.S)
    assert match is not None
    return "outdated" if "New version available" in match.group(0) else "current"


def test_the_portal_marks_follow_the_refreshed_version(
    httpserver: HTTPServer, settings: Any, acme: Acme
) -> None:
    settings.GATEWAY_LATEST_VERSION = "1.4.0"
    settings.COMPONENT_VERSIONS_URL = httpserver.url_for("/api/releases")
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, acme.admin_identity)
    gateway = GatewayFactory(group=SiteFactory(account=acme.account), last_seen_version="1.4.5")
    _online(gateway)
    # Before any refresh: the configured fallback, 1.4.0.
    assert _version_mark(client, gateway) == "current"
    publish(httpserver, "1.4.17")
    assert _version_mark(client, gateway) == "outdated"
    detail = client.get(f"/acme/gateways/{gateway.pk}").content.decode()
    assert "New version available" in detail
    # A failed refresh keeps the mark.
    httpserver.clear()
    httpserver.expect_request("/api/releases").respond_with_data("down", 503)
    assert not component_versions_refresh().ok
    assert _version_mark(client, gateway) == "outdated"
