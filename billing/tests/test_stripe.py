"""The Stripe boundary against the fake Stripe (billing_sync_jobs.md §1.3, scenario 5)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from accounts.tests.factories import AccountFactory
from billing import stripe as stripe_api
from tests.stripe_fake import DEFAULT_PRICE_ID, SECRET_KEY, StripeFake

pytestmark = pytest.mark.django_db


def test_customer_create_sends_the_documented_form(stripe_fake: StripeFake) -> None:
    account = AccountFactory(name="Big Company", legal_name="Big Company Inc.", slug="bigco")
    customer = stripe_api.customer_create(account=account, email=None)
    (call,) = stripe_fake.requests("POST", "/v1/customers")
    assert call.form == {
        "name": "Big Company Inc.",
        "metadata": {
            "account_id": str(account.pk),
            "account_name": "Big Company",
            "account_slug": "bigco",
        },
    }
    assert call.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert call.headers["Stripe-Version"] == "2023-10-16"
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert customer["id"].startswith("cus_") and customer["email"] is None

    stripe_api.customer_create(account=account, email="fin@bigco.com")
    assert stripe_fake.requests("POST", "/v1/customers")[1].form["email"] == "fin@bigco.com"


def test_subscription_and_portal_session(stripe_fake: StripeFake) -> None:
    subscription = stripe_api.subscription_create(customer_id="cus_1", price_id=DEFAULT_PRICE_ID)
    assert subscription["id"].startswith("sub_")
    (call,) = stripe_fake.requests("POST", "/v1/subscriptions")
    assert call.form == {"customer": "cus_1", "items": {"0": {"price": DEFAULT_PRICE_ID}}}
    session = stripe_api.billing_portal_session_create(
        customer_id="cus_1", return_url="http://localhost/x/settings/billing"
    )
    assert session["url"].startswith("https://billing.stripe.com/p/session/")


def test_creates_carry_idempotency_keys_of_their_parameters(stripe_fake: StripeFake) -> None:
    account, other = AccountFactory(), AccountFactory()
    first = stripe_api.customer_create(account=account, email=None)
    assert stripe_api.customer_create(account=account, email=None)["id"] == first["id"]
    assert stripe_api.customer_create(account=other, email=None)["id"] != first["id"]
    keys = [c.headers["Idempotency-Key"] for c in stripe_fake.requests("POST", "/v1/customers")]
    assert keys[0] == keys[1] != keys[2]
    assert len(stripe_fake.customers) == 2

    subscription = stripe_api.subscription_create(customer_id="cus_1", price_id=DEFAULT_PRICE_ID)
    again = stripe_api.subscription_create(customer_id="cus_1", price_id=DEFAULT_PRICE_ID)
    assert again["id"] == subscription["id"]
    stripe_api.subscription_create(customer_id="cus_2", price_id=DEFAULT_PRICE_ID)
    assert len(stripe_fake.subscriptions) == 2


def test_429_is_retried_three_times(stripe_fake: StripeFake) -> None:
    account = AccountFactory()
    stripe_fake.fail("/v1/customers", 429, times=2)
    stripe_api.customer_create(account=account, email=None)
    assert len(stripe_fake.requests("POST", "/v1/customers")) == 3

    stripe_fake.calls.clear()
    stripe_fake.fail("/v1/customers", 429, times=None)
    with pytest.raises(stripe_api.StripeUnavailable) as failure:
        stripe_api.customer_create(account=account, email=None)
    assert failure.value.status == 429
    assert failure.value.body["error"]["code"] == "lock_timeout"
    assert len(stripe_fake.requests("POST", "/v1/customers")) == 4


def test_5xx_and_404_are_not_retried(stripe_fake: StripeFake) -> None:
    stripe_fake.down()
    with pytest.raises(stripe_api.StripeUnavailable) as failure:
        stripe_api.customer_retrieve("cus_NffrFeUfNV2Hib")
    assert failure.value.status == 500
    assert len(stripe_fake.calls) == 1
    stripe_fake.up()
    with pytest.raises(stripe_api.StripeUnavailable) as failure:
        stripe_api.customer_retrieve("cus_DoesNotExist")
    assert failure.value.status == 404
    assert failure.value.body["error"]["code"] == "resource_missing"


def test_connection_refused_is_unavailable(stripe_fake: StripeFake) -> None:
    stripe_fake.server.stop()
    with pytest.raises(stripe_api.StripeUnavailable) as failure:
        stripe_api.customer_retrieve("cus_NffrFeUfNV2Hib")
    assert failure.value.status is None


def test_subscriptions_are_listed_page_by_page(stripe_fake: StripeFake) -> None:
    made = [stripe_fake.add_subscription(customer="cus_1", product="p")["id"] for _ in range(23)]
    assert [s["id"] for s in stripe_api.subscriptions_all()] == sorted(made)
    pages = stripe_fake.requests("GET", "/v1/subscriptions")
    assert len(pages) == 3
    assert pages[0].form == {} and pages[1].form == {"starting_after": sorted(made)[9]}


@override_settings(BILLING_ENABLED=False)
def test_nothing_is_called_with_billing_off() -> None:
    with pytest.raises(stripe_api.BillingDisabled):
        stripe_api.customer_retrieve("cus_1")


def test_retry_delays_double_and_are_capped(settings) -> None:
    settings.STRIPE_RETRY_BASE_DELAY_MS = 1000
    settings.STRIPE_RETRY_MAX_DELAY_MS = 10000
    for attempt, low in ((0, 1.0), (1, 2.0), (2, 4.0)):
        assert low <= stripe_api.retry_delay(attempt) < low * 1.1 + 0.001
    assert stripe_api.retry_delay(5) == 10.0
