"""Sign-up pages `/sign_up` and `/try` (portal.md §3.14, §8 scenarios 32-33)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client, override_settings

from accounts.models import Account, Actor, ActorGroup, AuthIdentity, AuthProvider
from accounts.views.sign_up import WELCOME_EMAILS_PER_ADDRESS
from gateways.models import Site
from resources.models import Resource
from resources.services import provisioning

pytestmark = pytest.mark.django_db

EMAIL_FIELD = "registration[email]"
ACCOUNT_FIELD = "registration[account][name]"
ACTOR_FIELD = "registration[actor][name]"


class FailingEmailBackend(BaseEmailBackend):
    """Every delivery fails like an unreachable SMTP server."""

    def send_messages(self, email_messages: Any) -> int:
        raise ConnectionRefusedError("SMTP server unreachable")


FAILING_BACKEND = f"{__name__}.FailingEmailBackend"


def _email() -> str:
    # A fresh address per test: the welcome-email rate limit lives in the shared Redis cache.
    return f"jdoe-{uuid.uuid4().hex[:10]}@foobar.example"


def _data(**overrides: str) -> dict[str, str]:
    data = {
        EMAIL_FIELD: _email(),
        ACCOUNT_FIELD: "FooBar",
        "registration[account][slug]": "placeholder",
        ACTOR_FIELD: "John Doe",
        "registration[actor][type]": "account_admin_user",
    }
    data.update(overrides)
    return data


def _rows() -> tuple[int, ...]:
    return tuple(
        m.objects.count()
        for m in (Account, Actor, ActorGroup, AuthProvider, AuthIdentity, Site, Resource)
    )


def _html(response: Any) -> str:
    return response.content.decode()


# --- the form -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/sign_up", "/try"])
def test_form_renders(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    html = _html(response)
    for text in (
        "Sign up for a new account",
        "Work Email",
        'placeholder="E.g. foo@example.com"',
        "Company Name",
        'name="registration[account][name]"',
        'placeholder="E.g. Example Corp"',
        "Your Name",
        'name="registration[actor][name]"',
        'placeholder="E.g. John Smith"',
        'name="registration[account][slug]" value="placeholder"',
        'name="registration[actor][type]" value="account_admin_user"',
        "Create Account",
        "Creating Account...",
        "By signing up you agree to our",
        "Terms of Use",
        "Already have an account?",
        "csrfmiddlewaretoken",
        'hx-trigger="input changed delay:300ms',
    ):
        assert text in html, text


def test_csrf_is_enforced() -> None:
    client = Client(enforce_csrf_checks=True)
    before = _rows()
    response = client.post("/sign_up", _data())
    assert response.status_code == 403
    assert _rows() == before


# --- success --------------------------------------------------------------------------------------


@override_settings(EXTERNAL_URL="https://portal.example.com/")
def test_sign_up_creates_a_ready_account(
    client: Client, django_capture_on_commit_callbacks
) -> None:
    hooked: list[Account] = []
    data = _data()
    email = data[EMAIL_FIELD]
    provisioning.POST_PROVISION_HOOKS.append(hooked.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/sign_up",
                {**data, EMAIL_FIELD: f"  {email} "},
                HTTP_USER_AGENT="Mozilla/5.0 SignUpTest",
                REMOTE_ADDR="203.0.113.7",
            )
    finally:
        provisioning.POST_PROVISION_HOOKS.remove(hooked.append)

    assert response.status_code == 200
    account = Account.objects.get(name="FooBar")
    assert hooked == [account]  # the billing hook point ran once, after commit
    assert account.metadata["stripe"]["billing_email"] == email
    assert account.slug and account.slug != "placeholder"
    assert account.config["notifications"]["outdated_gateway"]["enabled"] is True

    admin = Actor.objects.get(account=account)
    assert admin.name == "John Doe" and admin.type == Actor.Type.ACCOUNT_ADMIN_USER
    provider = AuthProvider.objects.get(account=account)
    assert provider.name == "Email" and provider.adapter == AuthProvider.Adapter.EMAIL
    identity = AuthIdentity.objects.get(account=account)
    assert identity.provider_identifier == email and identity.actor_id == admin.pk
    assert list(ActorGroup.objects.filter(account=account).values_list("name", flat=True)) == [
        "Everyone"
    ]
    sites = dict(Site.objects.filter(account=account).values_list("name", "managed_by"))
    assert sites == {"Default Site": "account", "Internet": "system"}
    resource = Resource.objects.get(account=account)
    assert resource.name == "Internet" and resource.type == Resource.Type.INTERNET

    html = _html(response)
    sign_in_url = f"https://portal.example.com/{account.slug}"
    assert "Your account has been created!" in html
    assert "Please check your email for sign in instructions." in html
    for text in ("Account Name:", "FooBar", "Account Slug:", account.slug, "Sign In URL:"):
        assert text in html
    assert f'href="{sign_in_url}"' in html
    otp_url = f"/{account.slug}/sign_in/providers/{provider.pk}/request_email_otp"
    assert f'action="{otp_url}"' in html
    assert f'name="email[provider_identifier]" value="{email}"' in html
    assert ">Sign In</button>" in html

    (message,) = mail.outbox
    assert message.subject == "Welcome to Firezone"
    assert message.to == [email]
    assert "Thank you for signing up for Firezone!" in message.body
    assert sign_in_url in message.body
    for detail in (str(account.pk), account.slug, "203.0.113.7", "Mozilla/5.0 SignUpTest"):
        assert detail in message.body
    assert isinstance(message, EmailMultiAlternatives)
    ((html_body, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    assert isinstance(html_body, str)
    assert f'href="{sign_in_url}"' in html_body and "Thank you for signing up" in html_body


def test_try_is_the_same_page(client: Client) -> None:
    response = client.post("/try", _data(**{ACCOUNT_FIELD: "Try Corp"}))
    assert "Your account has been created!" in _html(response)
    assert Account.objects.filter(name="Try Corp").exists()


def test_htmx_submit_renders_the_success_card(client: Client) -> None:
    response = client.post("/sign_up", _data(), HTTP_HX_REQUEST="true")
    html = _html(response)
    assert 'id="sign-up-card"' in html and "Your account has been created!" in html


def test_hidden_slug_is_ignored(client: Client) -> None:
    client.post("/sign_up", _data(**{"registration[account][slug]": "my_slug"}))
    assert Account.objects.get(name="FooBar").slug != "my_slug"


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({EMAIL_FIELD: "jdoe"}, "is an invalid email address"),
        ({EMAIL_FIELD: "jdoe@"}, "is an invalid email address"),
        ({EMAIL_FIELD: ""}, "can&#x27;t be blank"),
        ({EMAIL_FIELD: "   "}, "can&#x27;t be blank"),
        ({ACCOUNT_FIELD: ""}, "can&#x27;t be blank"),
        ({ACCOUNT_FIELD: "ab"}, "should be at least 3 character(s)"),
        ({ACCOUNT_FIELD: "x" * 65}, "should be at most 64 character(s)"),
        ({ACTOR_FIELD: ""}, "can&#x27;t be blank"),
        ({ACTOR_FIELD: "x" * 256}, "should be at most 255 character(s)"),
    ],
)
def test_invalid_input_writes_nothing(
    client: Client, overrides: dict[str, str], message: str
) -> None:
    before = _rows()
    response = client.post("/sign_up", _data(**overrides))
    assert response.status_code == 200
    html = _html(response)
    assert message in html
    assert "Your account has been created!" not in html
    assert _rows() == before and mail.outbox == []
    # The form keeps what was typed.
    for value in overrides.values():
        if value.strip():
            assert f'value="{value}"' in html


def test_all_blank_shows_each_error(client: Client) -> None:
    response = client.post("/sign_up", {})
    assert _html(response).count("can&#x27;t be blank") == 3


def test_company_name_limits_are_inclusive(client: Client) -> None:
    client.post("/sign_up", _data(**{ACCOUNT_FIELD: "abc"}))
    client.post("/sign_up", _data(**{ACCOUNT_FIELD: "y" * 64}))
    assert set(Account.objects.values_list("name", flat=True)) == {"abc", "y" * 64}


def test_live_validation_answers_with_one_field(client: Client) -> None:
    before = _rows()
    response = client.post(
        "/sign_up",
        _data(**{EMAIL_FIELD: "jdoe", ACCOUNT_FIELD: ""}),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER_NAME=EMAIL_FIELD,
    )
    html = _html(response).strip()
    assert html.startswith('<div id="registration_email-errors"')
    assert "is an invalid email address" in html
    assert "can&#x27;t be blank" not in html  # the untouched company name stays quiet
    assert _rows() == before and mail.outbox == []

    ok = client.post(
        "/sign_up", _data(), HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME=ACCOUNT_FIELD
    )
    ok_html = _html(ok)
    assert 'id="registration_account_name-errors"' in ok_html
    assert "field-error" not in ok_html.replace("field-errors", "")
    assert _rows() == before


# --- global switch and allow-list ---------------------------------------------------------------


@override_settings(FEATURE_SIGN_UP=False)
@pytest.mark.parametrize("path", ["/sign_up", "/try"])
def test_disabled_sign_up(client: Client, path: str) -> None:
    page = _html(client.get(path))
    assert "Sign-ups are currently disabled." in page
    assert "Please contact" in page and "sales@firezone.dev" in page
    assert "mailto:sales@firezone.dev?subject=Firezone%20Sign%20Up%20Request" in page
    assert "Terms of Use" in page
    assert "Create Account" not in page

    before = _rows()
    response = client.post(path, _data())
    assert response.status_code == 200
    assert "Sign-ups are currently disabled." in _html(response)
    assert _rows() == before and mail.outbox == []


@override_settings(SIGN_UP_EMAIL_DOMAINS=["example.com", "acme.test"])
def test_email_domain_allow_list(client: Client) -> None:
    before = _rows()
    refused = client.post("/sign_up", _data(**{EMAIL_FIELD: "jdoe@other.example"}))
    assert "this email domain is not allowed at this time" in _html(refused)
    assert _rows() == before

    live = client.post(
        "/sign_up",
        _data(**{EMAIL_FIELD: "jdoe@other.example"}),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER_NAME=EMAIL_FIELD,
    )
    assert "this email domain is not allowed at this time" in _html(live)

    accepted = client.post("/sign_up", _data(**{EMAIL_FIELD: f"{uuid.uuid4().hex}@ACME.test"}))
    assert "Your account has been created!" in _html(accepted)
    assert len(mail.outbox) == 1


def test_empty_allow_list_allows_any_domain(client: Client, settings: Any) -> None:
    settings.SIGN_UP_EMAIL_DOMAINS = []
    response = client.post("/sign_up", _data(**{EMAIL_FIELD: f"{uuid.uuid4().hex}@any.example"}))
    assert "Your account has been created!" in _html(response)


# --- welcome email limits and failures ------------------------------------------------------------


def test_welcome_email_rate_limit(client: Client) -> None:
    email = _email()
    WELCOME_EMAILS_PER_ADDRESS.reset(email)
    for n in range(WELCOME_EMAILS_PER_ADDRESS.limit):
        response = client.post("/sign_up", _data(**{EMAIL_FIELD: email, ACCOUNT_FIELD: f"Co {n}"}))
        assert "Your account has been created!" in _html(response)
    before = _rows()
    # Same address, other case: still the same mailbox.
    response = client.post("/sign_up", _data(**{EMAIL_FIELD: email.upper()}))
    html = _html(response)
    assert "This email has been rate limited. Please try again later." in html
    assert "Your account has been created!" not in html
    assert _rows() == before
    assert len(mail.outbox) == WELCOME_EMAILS_PER_ADDRESS.limit
    # Another address is unaffected.
    other = client.post("/sign_up", _data())
    assert "Your account has been created!" in _html(other)


@override_settings(EMAIL_BACKEND=FAILING_BACKEND)
def test_email_failure_rolls_everything_back(
    client: Client, django_capture_on_commit_callbacks
) -> None:
    hooked: list[Account] = []
    provisioning.POST_PROVISION_HOOKS.append(hooked.append)
    before = _rows()
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post("/sign_up", _data())
    finally:
        provisioning.POST_PROVISION_HOOKS.remove(hooked.append)
    assert response.status_code == 200
    html = _html(response)
    assert "We were unable to send you an email. Please try again later." in html
    assert "Your account has been created!" not in html
    assert _rows() == before
    assert callbacks == [] and hooked == []
    assert not Account.objects.filter(name="FooBar").exists()
