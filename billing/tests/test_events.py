"""The event pipeline and the event types through the webhook, against the fake Stripe
(billing_sync_jobs.md §1.7-§1.9, §6 scenarios 8-25)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.forms.models import model_to_dict

from accounts.limits import can_create_admins, can_create_service_accounts, can_create_users
from accounts.models import Account, Actor, ActorGroup, AuthIdentity, AuthProvider
from accounts.tests.factories import AccountFactory
from billing.models import ProcessedStripeEvent
from billing.services.events import customer_lock_key
from billing.tests.helpers import (
    STARTER_LIMITS,
    post_event,
    provisioned_account,
    with_item,
)
from firezone.web.context import account_banners
from gateways.limits import can_create_sites
from gateways.models import Site
from resources.models import Resource
from tests.stripe_fake import DEFAULT_PRICE_ID, FIXTURE_CUSTOMER, StripeFake, event

pytestmark = pytest.mark.django_db

SALES_CUSTOMER = "cus_Qx7sales0000001"
TEAM_LIMITS = {
    "users_count": 15,
    "account_admin_users_count": 10,
    "gateway_groups_count": 100,
    "service_accounts_count": 100,
    "monthly_active_users_count": None,
}
NO_FEATURES = dict.fromkeys(Account.FEATURES)
TEAM_FEATURES = {
    **NO_FEATURES,
    "internet_resource": True,
    "policy_conditions": True,
    "traffic_filters": True,
}


def _ok(payload: dict) -> None:
    response = post_event(payload)
    assert (response.status_code, response.content) == (200, b"")


def _recorded(payload: dict) -> bool:
    return ProcessedStripeEvent.objects.filter(stripe_event_id=payload["id"]).exists()


def _snapshot(account: Account) -> dict:
    account.refresh_from_db()
    return {**model_to_dict(account), "updated_at": account.updated_at}


# --- customer.created (scenarios 8-12) ----------------------------------------------------------


def test_8_customer_created_by_firezone_is_recorded_only(stripe_fake: StripeFake) -> None:
    before = Account.objects.count()
    payload = event("customer_created_provisioned")
    _ok(payload)
    assert Account.objects.count() == before
    row = ProcessedStripeEvent.objects.get(stripe_event_id=payload["id"])
    assert row.stripe_customer_id == FIXTURE_CUSTOMER and row.event_type == "customer.created"
    assert row.event_created_at == datetime.fromtimestamp(payload["created"], UTC)
    assert row.livemode is False
    assert stripe_fake.calls == []


def test_9_customer_created_without_sales_metadata(stripe_fake: StripeFake) -> None:
    before = Account.objects.count()
    payload = event("customer_created_incomplete_metadata")
    _ok(payload)
    assert Account.objects.count() == before
    assert not _recorded(payload)


def _assert_sales_account(stripe_fake: StripeFake, admin_email: str) -> Account:
    account = Account.objects.get(slug="bigcompany")
    assert account.name == account.legal_name == "Big Company Inc."
    stripe_metadata = account.metadata["stripe"]
    (subscription_call,) = stripe_fake.requests("POST", "/v1/subscriptions")
    assert subscription_call.form == {
        "customer": SALES_CUSTOMER,
        "items": {"0": {"price": DEFAULT_PRICE_ID}},
    }
    assert stripe_metadata["customer_id"] == SALES_CUSTOMER
    assert stripe_metadata["billing_email"] == "iown@bigcompany.com"
    assert stripe_metadata["subscription_id"] == next(iter(stripe_fake.subscriptions))
    assert stripe_metadata.get("product_name") is None
    (update,) = stripe_fake.requests("POST", f"/v1/customers/{SALES_CUSTOMER}")
    assert update.form == {
        "name": "Big Company Inc.",
        "metadata": {
            "account_id": str(account.pk),
            "account_name": "Big Company Inc.",
            "account_slug": "bigcompany",
        },
    }
    assert list(ActorGroup.objects.filter(account=account).values_list("name", flat=True)) == [
        "Everyone"
    ]
    assert set(Site.objects.filter(account=account).values_list("name", flat=True)) == {
        "Default Site",
        "Internet",
    }
    assert Resource.objects.filter(account=account, type="internet").count() == 1
    (provider,) = AuthProvider.objects.filter(account=account)
    assert (provider.name, provider.adapter) == ("Email (OTP)", "email")
    (admin,) = Actor.objects.filter(account=account)
    assert (admin.name, admin.type) == ("John Smith", Actor.Type.ACCOUNT_ADMIN_USER)
    (identity,) = AuthIdentity.objects.filter(actor=admin)
    assert identity.provider_identifier == admin_email
    return account


def test_10_customer_created_sales_flow(stripe_fake: StripeFake, mailoutbox: list) -> None:
    stripe_fake.add_customer(SALES_CUSTOMER)
    payload = event("customer_created_new_account")
    del payload["data"]["object"]["metadata"]["account_admin_email"]
    _ok(payload)
    _assert_sales_account(stripe_fake, "iown@bigcompany.com")
    assert _recorded(payload)
    assert mailoutbox == []


def test_10_account_admin_email_wins(stripe_fake: StripeFake) -> None:
    stripe_fake.add_customer(SALES_CUSTOMER)
    _ok(event("customer_created_new_account"))
    _assert_sales_account(stripe_fake, "john.smith@bigcompany.com")


@pytest.mark.parametrize(
    ("website", "slug"),
    [("https://www.big-co.co.uk", "www_big_co_co"), ("bigcompany.com", "bigcompany")],
)
def test_slug_from_company_website(stripe_fake: StripeFake, website: str, slug: str) -> None:
    stripe_fake.add_customer(SALES_CUSTOMER)
    payload = event("customer_created_new_account")
    payload["data"]["object"]["metadata"]["company_website"] = website
    _ok(payload)
    assert Account.objects.filter(slug=slug).exists()


def test_11_same_customer_created_twice(stripe_fake: StripeFake) -> None:
    stripe_fake.add_customer(SALES_CUSTOMER)
    payload = event("customer_created_new_account")
    _ok(payload)
    _ok(payload)
    assert Account.objects.filter(slug="bigcompany").count() == 1
    assert len(stripe_fake.requests("POST", "/v1/subscriptions")) == 1


def test_12_slug_taken(stripe_fake: StripeFake) -> None:
    stripe_fake.add_customer(SALES_CUSTOMER)
    AccountFactory(slug="bigcompany")
    before = Account.objects.count()
    payload = event("customer_created_new_account")
    _ok(payload)
    assert Account.objects.count() == before
    assert not _recorded(payload)
    assert stripe_fake.requests("POST", "/v1/subscriptions") == []


def test_invalid_sales_metadata_is_refused_and_rolled_back(stripe_fake: StripeFake) -> None:
    stripe_fake.add_customer(SALES_CUSTOMER)
    before = Account.objects.count()
    payload = event("customer_created_new_account")
    payload["data"]["object"]["metadata"].update(account_slug="admin")  # reserved
    _ok(payload)
    assert Account.objects.count() == before and not _recorded(payload)


def test_stripe_failing_during_the_sales_flow_is_retried(stripe_fake: StripeFake) -> None:
    stripe_fake.add_customer(SALES_CUSTOMER)
    stripe_fake.fail("/v1/subscriptions", 500)
    before = Account.objects.count()
    payload = event("customer_created_new_account")
    assert post_event(payload).status_code == 503
    assert Account.objects.count() == before and not _recorded(payload)
    _ok(payload)  # Stripe's retry
    assert Account.objects.filter(slug="bigcompany").exists()


# --- customer.updated (scenarios 13-15) ---------------------------------------------------------


def test_13_customer_updated(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake, slug="bigco")
    account.metadata["stripe"].update(support_type="email", product_name="Team")
    account.save()
    payload = event(
        "customer_updated",
        id="evt_upd13",
        email="x@y.com",
        metadata={"account_id": str(account.pk), "account_name": "New Name"},
    )
    payload["data"]["object"]["name"] = "Legal Inc"
    _ok(payload)
    account.refresh_from_db()
    assert (account.name, account.legal_name, account.slug) == ("New Name", "Legal Inc", "bigco")
    assert account.metadata["stripe"] == {
        "customer_id": FIXTURE_CUSTOMER,
        "product_name": "Team",
        "support_type": "email",
        "billing_email": "x@y.com",
    }
    assert _recorded(payload)


def test_customer_updated_sets_the_slug_when_given(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    _ok(event("customer_updated"))  # metadata.account_slug = "bigcompany"
    account.refresh_from_db()
    assert (account.slug, account.name) == ("bigcompany", "Big Company")
    assert account.legal_name == "Big Company Holdings Inc."


def test_customer_updated_with_a_missing_account_is_recorded(stripe_fake: StripeFake) -> None:
    stripe_fake.add_customer(FIXTURE_CUSTOMER, account_id="6d9d7c1e-3f0b-4c47-9a3e-2f1b5e7f9a10")
    payload = event("customer_updated")
    _ok(payload)
    assert _recorded(payload)


def test_14_customer_updated_unprovisioned_with_sales_metadata(stripe_fake: StripeFake) -> None:
    stripe_fake.add_customer(SALES_CUSTOMER)  # no account_id
    payload = event("customer_updated_unprovisioned")
    _ok(payload)
    _assert_sales_account(stripe_fake, "iown@bigcompany.com")
    assert _recorded(payload)


def test_15_customer_updated_unprovisioned_without_metadata(stripe_fake: StripeFake) -> None:
    stripe_fake.add_customer(SALES_CUSTOMER)
    before = Account.objects.count()
    payload = event("customer_updated_unprovisioned", metadata={})
    _ok(payload)
    assert Account.objects.count() == before and not _recorded(payload)


# --- subscriptions (scenarios 16-20) -------------------------------------------------------------


def test_16_team_update(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    _ok(event("customer_subscription_updated"))
    account.refresh_from_db()
    assert account.limits == TEAM_LIMITS
    assert account.features == TEAM_FEATURES
    assert account.metadata["stripe"] == {
        "customer_id": FIXTURE_CUSTOMER,
        "subscription_id": "sub_1MowQVLkdIwHu7ixeRlqHVzs",
        "product_name": "Team",
        "support_type": "email",
        "trial_ends_at": None,
    }
    assert (stripe_fake.calls[0].path, stripe_fake.calls[1].path) == (
        "/v1/products/prod_Na6dGcTsmU0I4R",
        f"/v1/customers/{FIXTURE_CUSTOMER}",
    )


def test_starter_keeps_the_previous_support_type(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    _ok(event("customer_subscription_updated", created=1727700300))
    _ok(with_item(event("customer_subscription_updated", created=1727700301), "starter", 1))
    account.refresh_from_db()
    assert account.limits == STARTER_LIMITS
    assert account.features == NO_FEATURES
    assert account.metadata["stripe"]["product_name"] == "Starter"
    assert account.metadata["stripe"]["support_type"] == "email"


def test_17_enterprise_trial(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    stripe_fake.add_product(
        "prod_PilotEnterprise",
        name="Enterprise",
        metadata={
            "multi_site_resources": "false",
            "self_hosted_relays": "false",
            "monthly_active_users_count": "1000",
            "service_accounts_count": "unlimited",
            "users_count": 14,
            "support_type": "email",
        },
    )
    trial_end = int(time.time()) + 2 * 86400
    payload = with_item(
        event(
            "customer_subscription_updated_trialing",
            trial_end=trial_end,
            metadata={
                "idp_sync": "true",
                "multi_site_resources": "true",
                "traffic_filters": "true",
                "gateway_groups_count": 100,
            },
        ),
        "prod_PilotEnterprise",
        12,
    )
    _ok(payload)
    account.refresh_from_db()
    assert account.limits == {
        "monthly_active_users_count": 1000,
        "gateway_groups_count": 100,
        "service_accounts_count": None,
        "users_count": 14,
        "account_admin_users_count": None,
    }
    assert account.features == {
        **NO_FEATURES,
        "idp_sync": True,
        "multi_site_resources": True,
        "self_hosted_relays": False,
        "traffic_filters": True,
    }
    ends = datetime.fromisoformat(account.metadata["stripe"]["trial_ends_at"])
    assert ends == datetime.fromtimestamp(trial_end, UTC)
    (banner,) = account_banners(account, None)
    assert banner.kind == "info"
    assert "Your Enterprise pilot period will expire in 1 day." in str(banner.html)


def test_17_enterprise_fixture_with_trial(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    _ok(event("customer_subscription_updated_trialing"))
    account.refresh_from_db()
    assert account.limits == {
        "users_count": None,
        "monthly_active_users_count": None,
        "service_accounts_count": None,
        "gateway_groups_count": 100,
        "account_admin_users_count": None,
    }
    assert account.features == {
        **dict.fromkeys(Account.FEATURES, True),
        "multi_site_resources": None,
        "self_hosted_relays": None,
    }
    assert account.metadata["stripe"]["trial_ends_at"] == "2024-10-30T12:40:00.000000Z"
    assert account.metadata["stripe"]["support_type"] == "email_and_slack"


def test_18_active_clears_the_trial(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    account.metadata["stripe"]["trial_ends_at"] = "2024-10-30T12:40:00.000000Z"
    account.save()
    past = int(time.time()) - 2 * 86400
    _ok(event("customer_subscription_updated", status="active", trial_end=past))
    account.refresh_from_db()
    assert account.metadata["stripe"]["trial_ends_at"] is None


def test_19_void_pause_disables_then_an_update_enables(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    _ok(event("customer_subscription_updated_paused"))
    account.refresh_from_db()
    assert account.disabled_at is not None
    assert account.disabled_reason == "Stripe subscription paused"
    assert account.limits == STARTER_LIMITS  # plan untouched
    _ok(event("customer_subscription_updated_resumed_collection"))
    account.refresh_from_db()
    assert (account.disabled_at, account.disabled_reason) == (None, None)
    assert account.limits == TEAM_LIMITS


def test_other_pause_behaviours_apply_the_plan(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake, disabled_at=datetime.now(UTC))
    _ok(event("customer_subscription_updated", pause_collection={"behavior": "keep_as_draft"}))
    account.refresh_from_db()
    assert account.disabled_at is None and account.limits == TEAM_LIMITS


def test_paused_and_resumed(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    _ok(event("customer_subscription_paused"))
    account.refresh_from_db()
    assert account.disabled_reason == "Stripe subscription paused"
    _ok(event("customer_subscription_resumed"))
    account.refresh_from_db()
    assert account.disabled_at is None
    assert account.metadata["stripe"]["product_name"] == "Enterprise"
    assert account.metadata["stripe"]["trial_ends_at"] is None  # status active


def test_20_deleted(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake, limits={})
    _ok(event("customer_subscription_deleted"))
    account.refresh_from_db()
    assert account.disabled_at is not None
    assert account.disabled_reason == "Stripe subscription deleted"
    assert not can_create_users(account)
    assert not can_create_admins(account)
    assert not can_create_service_accounts(account)
    assert not can_create_sites(account)


# --- ordering (21-22), ignored types (23-24), Stripe failing (25) -------------------------------


def test_21_older_event_of_the_same_type_is_skipped(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    t = 1727700300
    _ok(event("customer_subscription_updated", created=t))
    assert ProcessedStripeEvent.objects.count() == 1
    older = with_item(event("customer_subscription_updated", created=t - 30), "starter", 1)
    _ok(older)
    account.refresh_from_db()
    assert account.metadata["stripe"]["product_name"] == "Team"
    assert ProcessedStripeEvent.objects.count() == 1
    # Same second: skipped too (§7 item 2); strictly newer: applied.
    _ok(with_item(event("customer_subscription_updated", created=t), "starter", 1))
    assert ProcessedStripeEvent.objects.count() == 1
    _ok(with_item(event("customer_subscription_updated", created=t + 1), "starter", 1))
    account.refresh_from_db()
    assert account.metadata["stripe"]["product_name"] == "Starter"


def test_22_other_types_are_not_ordered(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    t = 1727700300
    _ok(event("customer_subscription_updated", created=t))
    payload = event("customer_updated", created=t - 30, metadata={"account_id": str(account.pk)})
    payload["data"]["object"]["name"] = "Legal Inc"
    _ok(payload)
    account.refresh_from_db()
    assert account.legal_name == "Legal Inc"
    assert account.metadata["stripe"]["product_name"] == "Team"
    assert ProcessedStripeEvent.objects.count() == 2


@pytest.mark.parametrize(
    "event_type",
    [
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
        "customer.deleted",
    ],
)
def test_23_ignored_types_are_recorded(stripe_fake: StripeFake, event_type: str) -> None:
    account = provisioned_account(stripe_fake)
    before = _snapshot(account)
    payload = event("customer_subscription_pending_update_applied")
    payload["type"] = event_type
    _ok(payload)
    assert _snapshot(account) == before
    assert _recorded(payload)
    assert stripe_fake.calls == []


def test_24_no_customer(stripe_fake: StripeFake) -> None:
    _ok(event("product_updated_no_customer"))
    assert not ProcessedStripeEvent.objects.exists()


def test_25_product_fetch_failing(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    before = _snapshot(account)
    stripe_fake.fail("/v1/products", 500)
    payload = event("customer_subscription_updated")
    response = post_event(payload)
    # Our decision (§7 item 1): a transient Stripe failure is a 503, so Stripe retries.
    assert response.status_code == 503
    assert response.content == b"Service Unavailable: Stripe is unavailable, retry later"
    assert _snapshot(account) == before and not _recorded(payload)
    _ok(payload)  # the retry
    account.refresh_from_db()
    assert account.limits == TEAM_LIMITS


def test_unknown_product_is_refused_for_good(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    before = _snapshot(account)
    payload = with_item(event("customer_subscription_updated"), "prod_Gone", 1)
    _ok(payload)  # a 404 at Stripe: retrying cannot help
    assert _snapshot(account) == before and not _recorded(payload)


# --- pipeline: idempotency, failures ------------------------------------------------------------


def test_duplicate_event_is_applied_once(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    payload = event("customer_subscription_deleted")
    _ok(payload)
    account.refresh_from_db()
    first = account.disabled_at
    _ok(payload)
    account.refresh_from_db()
    assert account.disabled_at == first
    assert ProcessedStripeEvent.objects.count() == 1
    assert len(stripe_fake.requests("GET", f"/v1/customers/{FIXTURE_CUSTOMER}")) == 1


def test_429_twice_then_success_while_resolving_the_customer(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    stripe_fake.fail("/v1/customers", 429, times=2)
    payload = event("customer_subscription_deleted")
    _ok(payload)
    assert len(stripe_fake.requests("GET", f"/v1/customers/{FIXTURE_CUSTOMER}")) == 3
    account.refresh_from_db()
    assert account.disabled_reason == "Stripe subscription deleted" and _recorded(payload)


def test_5xx_while_resolving_the_customer(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    before = _snapshot(account)
    stripe_fake.fail("/v1/customers", 502)
    payload = event("customer_subscription_deleted")
    assert post_event(payload).status_code == 503
    assert _snapshot(account) == before and not _recorded(payload)


def test_unknown_customer_is_refused_for_good(stripe_fake: StripeFake) -> None:
    payload = event("customer_subscription_deleted")  # the fake does not know the customer
    _ok(payload)
    assert not _recorded(payload)


def test_customer_without_account_id_is_refused(stripe_fake: StripeFake) -> None:
    stripe_fake.add_customer(FIXTURE_CUSTOMER)
    payload = event("customer_subscription_updated")
    _ok(payload)
    assert not _recorded(payload)


@pytest.mark.parametrize("count", [0, 2])
def test_subscription_items_other_than_one_are_refused(stripe_fake: StripeFake, count: int) -> None:
    account = provisioned_account(stripe_fake)
    before = _snapshot(account)
    payload = event("customer_subscription_updated")
    items = payload["data"]["object"]["items"]["data"]
    payload["data"]["object"]["items"]["data"] = items * count
    _ok(payload)
    assert _snapshot(account) == before and not _recorded(payload)


def test_non_numeric_limit_is_refused(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    before = _snapshot(account)
    payload = event("customer_subscription_updated", metadata={"users_count": "10 users"})
    _ok(payload)
    assert _snapshot(account) == before and not _recorded(payload)


def test_lock_key_is_stable_and_64_bit() -> None:
    key = customer_lock_key(FIXTURE_CUSTOMER)
    assert key == customer_lock_key(FIXTURE_CUSTOMER) != customer_lock_key("cus_other")
    assert -(2**63) <= key < 2**63


def test_disabling_deletes_flows_via_the_accounts_service(stripe_fake: StripeFake) -> None:
    # The account_disabled signal runs (resources deletes flows): nothing else to check here
    # than that the change went through account_disable (disabled_at kept on a second event).
    account = provisioned_account(stripe_fake)
    _ok(event("customer_subscription_paused"))
    account.refresh_from_db()
    paused_at = account.disabled_at
    _ok(event("customer_subscription_deleted"))
    account.refresh_from_db()
    assert account.disabled_at == paused_at
    assert account.disabled_reason == "Stripe subscription deleted"
    assert paused_at is not None and paused_at > datetime.now(UTC) - timedelta(minutes=1)
