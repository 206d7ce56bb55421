"""Provisioning an account in Stripe (billing_sync_jobs.md §1.4, §6 "Billing" scenarios 1-5)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from accounts.models import Account
from accounts.tests.factories import AccountFactory
from billing import stripe as stripe_api
from billing import tasks
from billing.selectors.provisioning import provisioning_pending
from billing.services.provisioning import account_billing_provision
from billing.stripe import StripeUnavailable
from tests.stripe_fake import DEFAULT_PRICE_ID, StripeFake

pytestmark = pytest.mark.django_db


def _metadata(account: Account) -> dict[str, Any]:
    return Account.objects.get(pk=account.pk).metadata


def test_scenario_1_customer_and_subscription(stripe_fake: StripeFake) -> None:
    account = AccountFactory(name="Big Company", legal_name="Big Company Inc.", slug="bigco")
    assert provisioning_pending(account)

    provisioned = account_billing_provision(account=account)

    (customer_call,) = stripe_fake.requests("POST", "/v1/customers")
    assert customer_call.form == {
        "name": "Big Company Inc.",
        "metadata": {
            "account_id": str(account.pk),
            "account_name": "Big Company",
            "account_slug": "bigco",
        },
    }  # no email: billing_email is null
    (subscription_call,) = stripe_fake.requests("POST", "/v1/subscriptions")
    (customer_id,) = stripe_fake.customers
    assert subscription_call.form == {
        "customer": customer_id,
        "items": {"0": {"price": DEFAULT_PRICE_ID}},
    }
    (subscription_id,) = stripe_fake.subscriptions
    assert len(stripe_fake.calls) == 2
    stored = _metadata(account)["stripe"]
    assert stored == {
        "customer_id": customer_id,
        "billing_email": None,  # what Stripe echoed
        "subscription_id": subscription_id,
    }
    assert provisioned.stripe == stored
    assert not provisioning_pending(provisioned)


def test_scenario_1_with_billing_email_merges_metadata(stripe_fake: StripeFake) -> None:
    account = AccountFactory(
        metadata={"stripe": {"billing_email": "fin@bigco.com", "product_name": "Team"}, "x": 1}
    )
    account_billing_provision(account=account)
    (call,) = stripe_fake.requests("POST", "/v1/customers")
    assert call.form["email"] == "fin@bigco.com"
    metadata = _metadata(account)
    assert metadata["x"] == 1
    assert metadata["stripe"]["product_name"] == "Team"  # merged, not replaced
    assert metadata["stripe"]["billing_email"] == "fin@bigco.com"
    assert metadata["stripe"]["customer_id"].startswith("cus_")


def test_scenario_2_billing_disabled_calls_nothing(stripe_fake: StripeFake, settings) -> None:
    settings.BILLING_ENABLED = False
    account = AccountFactory()
    before = _metadata(account)
    assert account_billing_provision(account=account) is account
    assert stripe_fake.calls == []
    assert _metadata(account) == before
    assert not provisioning_pending(account)


def test_scenario_3_existing_customer_calls_nothing(stripe_fake: StripeFake) -> None:
    account = AccountFactory(metadata={"stripe": {"customer_id": "cus_NffrFeUfNV2Hib"}})
    account_billing_provision(account=account)
    assert stripe_fake.calls == []
    assert _metadata(account) == {"stripe": {"customer_id": "cus_NffrFeUfNV2Hib"}}


def test_scenario_4_stripe_down_leaves_the_account_unchanged(stripe_fake: StripeFake) -> None:
    account = AccountFactory(metadata={"stripe": {"billing_email": "a@b.co"}})
    stripe_fake.down()
    with pytest.raises(StripeUnavailable) as failure:
        account_billing_provision(account=account)
    assert failure.value.status == 500
    assert len(stripe_fake.calls) == 1  # a 5xx is not retried in place
    assert _metadata(account) == {"stripe": {"billing_email": "a@b.co"}}
    assert provisioning_pending(account)


def test_scenario_5_429_twice_then_success(stripe_fake: StripeFake) -> None:
    account = AccountFactory()
    stripe_fake.fail("/v1/customers", 429, times=2)
    account_billing_provision(account=account)
    assert len(stripe_fake.requests("POST", "/v1/customers")) == 3
    assert _metadata(account)["stripe"]["subscription_id"].startswith("sub_")


def test_scenario_5_always_429_fails_after_four_requests(stripe_fake: StripeFake) -> None:
    account = AccountFactory()
    stripe_fake.fail("/v1/customers", 429, times=None)
    with pytest.raises(StripeUnavailable) as failure:
        account_billing_provision(account=account)
    assert failure.value.status == 429
    assert len(stripe_fake.requests("POST", "/v1/customers")) == 4
    assert _metadata(account) == {}


def test_failed_subscription_keeps_the_customer_and_the_task_finishes(
    stripe_fake: StripeFake,
) -> None:
    account = AccountFactory()
    stripe_fake.fail("/v1/subscriptions", 500, times=1)
    with pytest.raises(StripeUnavailable):
        account_billing_provision(account=account)
    stripe = _metadata(account)["stripe"]
    assert stripe["customer_id"].startswith("cus_") and "subscription_id" not in stripe
    assert not provisioning_pending(Account.objects.get(pk=account.pk))

    tasks.provision_account.apply(args=[str(account.pk)])
    assert len(stripe_fake.requests("POST", "/v1/customers")) == 1  # never a second customer
    assert len(stripe_fake.requests("POST", "/v1/subscriptions")) == 2
    assert _metadata(account)["stripe"]["subscription_id"].startswith("sub_")


def test_retry_task_is_bounded_exponential_back_off() -> None:
    task = tasks.provision_account
    assert task.autoretry_for == (StripeUnavailable,)
    assert task.retry_backoff == 30 and task.retry_backoff_max == 3600
    assert task.retry_jitter is True and task.max_retries == 12
    assert tasks.sync_stripe_customer.autoretry_for == (StripeUnavailable,)


def test_retry_task_ignores_a_deleted_account(stripe_fake: StripeFake) -> None:
    tasks.provision_account.apply(args=["00000000-0000-0000-0000-000000000000"])
    assert stripe_fake.calls == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_attempts_create_one_customer(stripe_fake: StripeFake) -> None:
    account = AccountFactory()
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            barrier.wait()
            account_billing_provision(account=Account.objects.get(pk=account.pk))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(stripe_fake.requests("POST", "/v1/customers")) == 1
    assert len(stripe_fake.requests("POST", "/v1/subscriptions")) == 1
    (customer_id,) = stripe_fake.customers
    assert _metadata(account)["stripe"]["customer_id"] == customer_id


def test_a_provisioning_redone_after_stripe_answered_makes_no_second_customer(
    stripe_fake: StripeFake,
) -> None:
    """A worker killed after Stripe created the customer and the subscription but before our
    commits (tasks acknowledge late, so `provision_account` runs again): the creates are
    repeated with the same idempotency keys and Stripe answers with what it created."""
    account = AccountFactory()
    # What the killed run got from Stripe; nothing of it reached the database.
    lost_customer = stripe_api.customer_create(account=account, email=None)
    lost_subscription = stripe_api.subscription_create(
        customer_id=lost_customer["id"], price_id=DEFAULT_PRICE_ID
    )
    assert provisioning_pending(account)

    tasks.provision_account(str(account.pk))

    assert list(stripe_fake.customers) == [lost_customer["id"]]
    assert list(stripe_fake.subscriptions) == [lost_subscription["id"]]
    stored = _metadata(account)["stripe"]
    assert stored["customer_id"] == lost_customer["id"]
    assert stored["subscription_id"] == lost_subscription["id"]
