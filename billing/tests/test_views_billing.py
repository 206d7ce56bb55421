"""Settings → Billing (portal.md §4.10; billing_sync_jobs.md §1.11, §1.13, §1.14, scenario 26)
with Django's test client against the fake Stripe, and the links to it from the sidebar, the
warning banner and the "UPGRADE TO UNLOCK" badges."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from accounts.models import Account
from accounts.tests.factories import ActorFactory, IdentityFactory, subject_of_type
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from billing.services.portal import billing_portal_session_create
from firezone.errors import Unauthorized
from gateways.tests.factories import ClientFactory, SiteFactory
from tests.stripe_fake import FIXTURE_CUSTOMER, StripeFake, fixture

pytestmark = pytest.mark.django_db

URL = "/acme/settings/billing"
STRIPE = {
    "customer_id": FIXTURE_CUSTOMER,
    "product_name": "Team",
    "billing_email": "billing@acme.test",
    "support_type": "email",
}
PORTAL_URL = fixture("stripe_billing_portal_session")["url"]


@pytest.fixture
def acme() -> Acme:
    return make_acme(legal_name="Acme Inc.", metadata={"stripe": STRIPE})


@pytest.fixture
def client(acme: Acme) -> Client:
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, acme.admin_identity)
    return client


def _text(response: Any) -> str:
    assert response.status_code == 200
    return response.content.decode()


def _section(text: str, id: str) -> str:
    match = re.search(rf'<(section|table|div)[^>]*id="{id}".*?</\1>', text, re.S)
    assert match is not None, id
    return match.group(0)


def _mailto(text: str, link_text: str) -> dict[str, str]:
    match = re.search(rf'href="(mailto:[^"]+)"[^>]*>{link_text}</a>', text)
    assert match is not None, link_text
    url = urlsplit(html.unescape(match.group(1)))
    assert url.path == "support@firezone.dev"
    return {k: v[0] for k, v in parse_qs(url.query).items()}


def _warning_banner(text: str) -> str:
    match = re.search(r'<div class="banner banner-warning" role="alert">(.*?)</div>', text, re.S)
    assert match is not None
    return match.group(1)


def _set(acme: Acme, **fields: Any) -> None:
    Account.objects.filter(pk=acme.account.pk).update(**fields)


# --- who sees the page ----------------------------------------------------------------------------


def test_billing_off_is_404_and_hides_the_menu(client: Client) -> None:
    assert client.get(URL).status_code == 404
    assert client.post(URL, {"action": "manage"}).status_code == 404
    assert ">Billing<" not in _text(client.get("/acme/settings/account"))


def test_unprovisioned_is_404(stripe_fake: StripeFake, client: Client, acme: Acme) -> None:
    _set(acme, metadata={"stripe": {"product_name": "Team"}})
    assert client.get(URL).status_code == 404
    assert client.post(URL, {"action": "manage"}).status_code == 404
    assert ">Billing<" not in _text(client.get("/acme/settings/account"))
    assert stripe_fake.calls == []


def test_non_admin_gets_the_standard_404(stripe_fake: StripeFake, acme: Acme) -> None:
    user = ActorFactory(account=acme.account)
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, identity)
    assert client.get(URL).status_code == 404
    assert client.post(URL, {"action": "manage"}).status_code == 404
    assert stripe_fake.calls == []


def test_signed_out_is_sent_to_sign_in(stripe_fake: StripeFake, acme: Acme) -> None:
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/acme?redirect_to=")


# --- the page -------------------------------------------------------------------------------------


def test_provisioned_page(stripe_fake: StripeFake, client: Client, acme: Acme) -> None:
    text = _text(client.get(URL))
    assert "<title>Billing · Firezone</title>" in text
    info = _section(text, "billing")
    assert "Current Plan" in info and "Team" in info and "Contact sales" in info
    assert "Billing Email" in info and "billing@acme.test" in info
    assert "Billing Name" in info and "Acme Inc." in info
    assert 'id="manage-billing"' in text and ">Manage</button>" in text
    assert "csrfmiddlewaretoken" in text

    # The Manage post ends at Stripe's portal: the page's form-action allows that origin only.
    def form_action(url: str) -> str:
        policy = client.get(url)["Content-Security-Policy"]
        return next(d.strip() for d in policy.split(";") if d.strip().startswith("form-action"))

    assert form_action(URL) == "form-action 'self' https://billing.stripe.com"
    assert form_action("/acme/settings/account") == "form-action 'self'"
    # No limits set: no Limits section.
    assert 'id="billing-limits"' not in text
    # Sidebar: Billing is there and active.
    assert re.search(r'<a[^>]*href="/acme/settings/billing"[^>]*>\s*Billing', text)

    sales = _mailto(text, "Contact sales")
    assert sales["subject"] == "Billing question: Acme"
    assert sales["body"] == (
        "\n\n---\n"
        "Account Name: Acme\n"
        "Account Slug: acme\n"
        f"Account ID: {acme.account.pk}\n"
        f"Actor ID: {acme.admin.pk}"
    )
    terminate = _mailto(text, "contact support")
    assert terminate["subject"] == "Account termination request: Acme"
    danger = _section(text, "danger-zone")
    assert "Danger zone" in danger and "Terminate account" in danger
    assert "To disable your account and schedule it for deletion, please" in danger
    assert stripe_fake.calls == []  # showing the page asks Stripe nothing


def test_limits_table(stripe_fake: StripeFake, client: Client, acme: Acme) -> None:
    _set(
        acme,
        limits={
            "users_count": 200,
            "monthly_active_users_count": 1,
            "service_accounts_count": 5,
            "account_admin_users_count": None,
            "gateway_groups_count": 1,
        },
    )
    for _ in range(2):
        ClientFactory(actor=ActorFactory(account=acme.account))
    ActorFactory(account=acme.account, service_account=True)
    SiteFactory(account=acme.account)
    text = _text(client.get(URL))
    assert "Upgrade your plan to increase the limits below." in text
    table = _section(text, "billing-limits")
    rows = re.findall(r"<tr>\s*<th>(.*?)</th>\s*<td>(.*?)</td>", table, re.S)
    cells = {re.sub(r"<.*", "", th, flags=re.S).strip(): td for th, td in rows}
    assert list(cells) == ["Users", "Seats", "Service Accounts", "Sites"]  # no Admins: unlimited
    # 1 admin + 2 users; 2 seats (the admin has no device); 1 service account; 1 site.
    assert cells["Users"] == '<span class="">3 used</span> / 200 allowed'
    assert cells["Seats"] == '<span class="over-limit">2 used</span> / 1 allowed'
    assert cells["Service Accounts"] == '<span class="">1 used</span> / 5 allowed'
    assert cells["Sites"] == '<span class="">1 used</span> / 1 allowed'  # at the limit: not red
    assert "Users that have signed in from a device within the last month" in table


@pytest.mark.parametrize(
    ("support_type", "expected"),
    [
        ("email", "and we will get back to you as soon as possible."),
        ("email_and_slack", "Please send us a message in the shared Slack channel or"),
        (None, "Priority email and dedicated Slack support options are available on paid plans."),
    ],
)
def test_support_section(
    stripe_fake: StripeFake, client: Client, acme: Acme, support_type: Any, expected: str
) -> None:
    _set(acme, metadata={"stripe": {**STRIPE, "support_type": support_type}})
    support = _section(_text(client.get(URL)), "support")
    assert expected in support
    if support_type is None:
        assert "Discourse" in support and "Discord" in support
    else:
        assert _mailto(support, "an email")["subject"] == "Support request: Acme"


# --- Manage (scenario 26) -------------------------------------------------------------------------


def test_manage_redirects_to_the_stripe_portal(
    stripe_fake: StripeFake, client: Client, acme: Acme, settings: Any
) -> None:
    settings.EXTERNAL_URL = "https://app.example.test/"
    response = client.post(URL, {"action": "manage"})
    assert response.status_code == 302
    assert response["Location"] == PORTAL_URL
    (call,) = stripe_fake.requests("POST", "/v1/billing_portal/sessions")
    assert call.form == {
        "customer": FIXTURE_CUSTOMER,
        "return_url": "https://app.example.test/acme/settings/billing",
    }


def test_manage_when_stripe_fails(stripe_fake: StripeFake, client: Client) -> None:
    stripe_fake.down()
    text = _text(client.post(URL, {"action": "manage"}))
    error = _section(text, "billing-error")
    assert "Billing portal is temporarily unavailable, please try again later." in error
    assert "If you need assistance, please" in error
    assert _mailto(error, "contact support")["subject"] == "Billing portal issue: Acme"
    assert "Current Plan" in text


def test_manage_needs_the_csrf_token(stripe_fake: StripeFake, acme: Acme) -> None:
    client = Client(HTTP_USER_AGENT=UA, enforce_csrf_checks=True)
    inject_session(client, acme.admin_identity)
    assert client.post(URL, {"action": "manage"}).status_code == 403
    page = _text(client.get(URL))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    response = client.post(URL, {"action": "manage", "csrfmiddlewaretoken": token.group(1)})
    assert response.status_code == 302 and response["Location"] == PORTAL_URL
    assert len(stripe_fake.requests("POST", "/v1/billing_portal/sessions")) == 1


def test_other_posts_go_back_to_the_page(stripe_fake: StripeFake, client: Client) -> None:
    response = client.post(URL, {"action": "nothing"})
    assert response.status_code == 302 and response["Location"] == URL
    assert stripe_fake.calls == []


@pytest.mark.parametrize("actor_type", ["account_user", "api_client", "service_account"])
def test_manage_needs_the_billing_permission(
    stripe_fake: StripeFake, acme: Acme, actor_type: str
) -> None:
    subject = subject_of_type(acme.account, actor_type)
    with pytest.raises(Unauthorized) as exc:
        billing_portal_session_create(subject=subject)
    assert exc.value.reason == "missing_permissions"
    assert exc.value.missing == ("billing:manage_own",)
    assert stripe_fake.calls == []


# --- links to the page ----------------------------------------------------------------------------


def test_warning_banner_links_here_only_when_provisioned(
    stripe_fake: StripeFake, client: Client, acme: Acme, settings: Any
) -> None:
    _set(acme, warning="You have exceeded the following limits: users")
    banner = _warning_banner(_text(client.get("/acme/sites")))
    assert "You have exceeded the following limits: users." in banner
    assert (
        'Please check your <a href="/acme/settings/billing">billing information</a> to continue '
        "using Firezone." in banner
    )
    settings.BILLING_ENABLED = False
    banner = _warning_banner(_text(client.get("/acme/sites")))
    assert "You have exceeded the following limits: users." in banner
    assert "Please check your" not in banner and "/settings/billing" not in banner


def test_upgrade_badge_links_here_only_when_provisioned(
    stripe_fake: StripeFake, client: Client, acme: Acme, settings: Any
) -> None:
    _set(acme, features={**acme.account.features, "traffic_filters": False})
    text = _text(client.get("/acme/resources/new"))
    assert re.search(r'<a class="upgrade-badge" href="/acme/settings/billing"[^>]*>', text)
    settings.BILLING_ENABLED = False
    text = _text(client.get("/acme/resources/new"))
    assert '<span class="upgrade-badge"' in text and "UPGRADE TO UNLOCK" in text
    assert "/settings/billing" not in text
