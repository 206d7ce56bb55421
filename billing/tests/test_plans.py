"""Plan metadata → limits and features (billing_sync_jobs.md §1.9), the pure mapping."""

from __future__ import annotations

import pytest

from billing.plans import PlanError, plan_for_subscription, plan_from_metadata, subscription_item
from tests.stripe_fake import event, fixture

NO_FEATURES = dict.fromkeys(
    (
        "policy_conditions",
        "multi_site_resources",
        "traffic_filters",
        "self_hosted_relays",
        "idp_sync",
        "rest_api",
        "internet_resource",
    )
)


def test_team_quantity_15() -> None:
    subscription = event("customer_subscription_updated")["data"]["object"]
    plan = plan_for_subscription(subscription=subscription, product=fixture("stripe_product_team"))
    assert plan.limits == {
        "users_count": 15,
        "account_admin_users_count": 10,
        "gateway_groups_count": 100,
        "service_accounts_count": 100,
        "monthly_active_users_count": None,
    }
    assert plan.features == {
        **NO_FEATURES,
        "internet_resource": True,
        "policy_conditions": True,
        "traffic_filters": True,
    }
    assert plan.support_type == "email"


def test_enterprise_overlaid_by_subscription_metadata() -> None:
    plan = plan_from_metadata(
        product_metadata={
            "multi_site_resources": "false",
            "self_hosted_relays": "false",
            "monthly_active_users_count": "1000",
            "service_accounts_count": "unlimited",
            "users_count": 14,
            "support_type": "email",
        },
        subscription_metadata={
            "idp_sync": "true",
            "multi_site_resources": "true",
            "traffic_filters": "true",
            "gateway_groups_count": 100,
        },
        quantity=12,
    )
    assert plan.limits == {
        "monthly_active_users_count": 1000,
        "gateway_groups_count": 100,
        "service_accounts_count": None,
        "users_count": 14,
        "account_admin_users_count": None,
    }
    assert plan.features == {
        **NO_FEATURES,
        "idp_sync": True,
        "multi_site_resources": True,
        "self_hosted_relays": False,
        "traffic_filters": True,
    }
    assert plan.support_type == "email"


def test_values_other_than_true_false_and_unknown_keys_are_dropped() -> None:
    plan = plan_from_metadata(
        product_metadata={"idp_sync": "yes", "rest_api": True, "colour": "blue"},
        subscription_metadata=None,
        quantity=None,
    )
    assert plan.features == {**NO_FEATURES, "rest_api": True}
    assert plan.limits["users_count"] is None and plan.support_type is None
    unlimited = plan_from_metadata(
        product_metadata={"users_count": "unlimited"}, subscription_metadata={}, quantity=3
    )
    assert unlimited.limits["users_count"] is None


@pytest.mark.parametrize("value", ["10 users", "", "true", "-1", -1, None, 1.5])
def test_a_limit_that_is_not_a_number_is_a_clear_error(value: object) -> None:
    with pytest.raises(PlanError, match="service_accounts_count"):
        plan_from_metadata(
            product_metadata={"service_accounts_count": value},
            subscription_metadata={},
            quantity=1,
        )


def test_exactly_one_item() -> None:
    subscription = event("customer_subscription_updated")["data"]["object"]
    assert subscription_item(subscription).product_id == "prod_Na6dGcTsmU0I4R"
    items = subscription["items"]["data"]
    for count in (0, 2):
        subscription["items"]["data"] = items * count
        with pytest.raises(PlanError, match=f"has {count} items"):
            subscription_item(subscription)
