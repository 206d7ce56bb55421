"""Sign-up provisions the account in Stripe after the commit (billing_sync_jobs.md §1.4), and a
Stripe outage never loses the account: it is retried by `billing.tasks.provision_account`
while the portal says "Billing is being set up"."""

from __future__ import annotations

import html
import uuid

import pytest
from django.test import Client

from accounts.models import Account, AuthIdentity
from accounts.tests.portal import UA, inject_session
from billing import tasks
from firezone.web.context import MSG_BILLING_PENDING
from tests.stripe_fake import StripeFake

pytestmark = pytest.mark.django_db


def _sign_up(client: Client, capture, name: str = "FooBar") -> tuple[int, str]:
    email = f"jdoe-{uuid.uuid4().hex[:10]}@foobar.example"
    with capture(execute=True):
        response = client.post(
            "/sign_up",
            {
                "registration[email]": email,
                "registration[account][name]": name,
                "registration[actor][name]": "John Doe",
            },
        )
    return response.status_code, email


def _portal_page(account: Account) -> str:
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, AuthIdentity.objects.get(account=account))
    response = client.get(f"/{account.slug}/settings/account")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_sign_up_provisions_after_commit(
    client: Client, stripe_fake: StripeFake, django_capture_on_commit_callbacks
) -> None:
    status, email = _sign_up(client, django_capture_on_commit_callbacks)
    assert status == 200
    account = Account.objects.get(name="FooBar")
    (call,) = stripe_fake.requests("POST", "/v1/customers")
    assert call.form == {
        "name": "FooBar",
        "email": email,
        "metadata": {
            "account_id": str(account.pk),
            "account_name": "FooBar",
            "account_slug": account.slug,
        },
    }
    assert len(stripe_fake.requests("POST", "/v1/subscriptions")) == 1
    assert account.stripe["billing_email"] == email
    assert account.stripe["customer_id"] in stripe_fake.customers
    assert account.stripe["subscription_id"] in stripe_fake.subscriptions
    assert MSG_BILLING_PENDING not in _portal_page(account)


def test_stripe_outage_keeps_the_account_and_the_task_provisions_it_later(
    client: Client, stripe_fake: StripeFake, django_capture_on_commit_callbacks
) -> None:
    stripe_fake.down()
    status, email = _sign_up(client, django_capture_on_commit_callbacks)

    assert status == 200  # the page is not a 500: the account exists
    account = Account.objects.get(name="FooBar")
    assert AuthIdentity.objects.get(account=account).provider_identifier == email
    assert "customer_id" not in account.stripe
    # The hook's attempt, then the retry task (eager in tests: its retries run at once, each
    # one more 500) until max_retries is spent.
    attempts = stripe_fake.requests("POST", "/v1/customers")
    assert len(attempts) == 1 + 1 + tasks.provision_account.max_retries
    assert MSG_BILLING_PENDING in _portal_page(account)

    # Stripe is back: the next retry (driven here by hand) provisions the account, once.
    stripe_fake.up()
    stripe_fake.calls.clear()
    tasks.provision_account.apply(args=[str(account.pk)])
    account.refresh_from_db()
    assert account.stripe["customer_id"] in stripe_fake.customers
    assert account.stripe["subscription_id"] in stripe_fake.subscriptions
    assert len(stripe_fake.requests("POST", "/v1/customers")) == 1
    assert stripe_fake.requests("POST", "/v1/customers")[0].form["email"] == email
    assert MSG_BILLING_PENDING not in _portal_page(account)

    # Later retries are no-ops.
    tasks.provision_account.apply(args=[str(account.pk)])
    assert len(stripe_fake.requests("POST", "/v1/customers")) == 1
    assert len(stripe_fake.requests("POST", "/v1/subscriptions")) == 1


def test_sign_up_with_billing_off_calls_nothing(
    client: Client, stripe_fake: StripeFake, settings, django_capture_on_commit_callbacks
) -> None:
    settings.BILLING_ENABLED = False
    status, _ = _sign_up(client, django_capture_on_commit_callbacks)
    assert status == 200
    account = Account.objects.get(name="FooBar")
    assert stripe_fake.calls == []
    assert "customer_id" not in account.stripe
    assert MSG_BILLING_PENDING not in _portal_page(account)
