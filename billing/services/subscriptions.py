"""Stripe subscriptions → an account's plan and disabled state (billing_sync_jobs.md §1.8.3,
§1.8.4, §1.9).

* `subscription_apply_active`: the product's and subscription's metadata become the account's
  features and limits (replaced wholesale), `metadata.stripe` gets the subscription id, product
  name, trial end and support type (merged), and a disabled account is enabled again.
* `subscription_apply_paused` / `subscription_apply_deleted`: the account is disabled through
  `account_disable` (its flows are deleted and its devices disconnected by the usual path).
* `subscription_apply_updated`: `customer.subscription.updated`, paused when
  `pause_collection.behavior == "void"`, active otherwise (also what `sync_pricing_plans` runs).

Refusals raise `EventRefused`, Stripe failures `StripeUnavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from accounts.models import Account
from accounts.services.accounts import account_disable, account_update_system
from billing import stripe
from billing.errors import EventRefused
from billing.plans import PlanError, plan_for_subscription, subscription_item
from billing.services.customers import account_for_customer
from firezone.errors import ValidationFailed

REASON_PAUSED = "Stripe subscription paused"
REASON_DELETED = "Stripe subscription deleted"
TRIAL_STATUSES = frozenset({"trialing", "paused"})


def _customer_id(subscription: Mapping[str, Any]) -> str:
    customer = subscription.get("customer")
    if isinstance(customer, Mapping):  # expanded
        customer = customer.get("id")
    if not isinstance(customer, str) or not customer:
        raise EventRefused("invalid_subscription", "subscription has no customer")
    return customer


def trial_ends_at(subscription: Mapping[str, Any]) -> str | None:
    """`trial_end` (ISO 8601 UTC with µs) while trialing or paused, else None (§1.8.3 step 3):
    an active subscription clears a stale trial date."""
    trial_end = subscription.get("trial_end")
    if trial_end is None or subscription.get("status") not in TRIAL_STATUSES:
        return None
    if not isinstance(trial_end, int) or isinstance(trial_end, bool):
        raise EventRefused("invalid_subscription", f"trial_end {trial_end!r} is not a timestamp")
    return datetime.fromtimestamp(trial_end, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_void_pause(subscription: Mapping[str, Any]) -> bool:
    return (subscription.get("pause_collection") or {}).get("behavior") == "void"


@transaction.atomic
def subscription_apply_active(*, subscription: Mapping[str, Any]) -> Account:
    """§1.8.3: apply the plan and enable the account."""
    try:
        item = subscription_item(subscription)
    except PlanError as exc:
        raise EventRefused("invalid_plan", str(exc)) from exc
    product = stripe.product_retrieve(item.product_id)
    try:
        plan = plan_for_subscription(subscription=subscription, product=product)
    except PlanError as exc:
        raise EventRefused("invalid_plan", f"product {item.product_id}: {exc}") from exc
    stripe_metadata: dict[str, Any] = {
        "subscription_id": subscription.get("id"),
        "product_name": product.get("name"),
        "trial_ends_at": trial_ends_at(subscription),
    }
    if plan.support_type is not None:
        stripe_metadata["support_type"] = plan.support_type
    account = account_for_customer(_customer_id(subscription))
    try:
        return account_update_system(
            account=account,
            features=plan.features,
            limits=plan.limits,
            metadata={"stripe": stripe_metadata},
            disabled_at=None,
            disabled_reason=None,
        )
    except ValidationFailed as exc:
        raise EventRefused("invalid_account_update", str(exc.errors)) from exc


@transaction.atomic
def subscription_apply_paused(*, subscription: Mapping[str, Any]) -> Account:
    """§1.8.4: disable the account ("Stripe subscription paused")."""
    account = account_for_customer(_customer_id(subscription))
    return account_disable(account=account, reason=REASON_PAUSED)


@transaction.atomic
def subscription_apply_deleted(*, subscription: Mapping[str, Any]) -> Account:
    """§1.8.4: disable the account ("Stripe subscription deleted")."""
    account = account_for_customer(_customer_id(subscription))
    return account_disable(account=account, reason=REASON_DELETED)


@transaction.atomic
def subscription_apply_updated(*, subscription: Mapping[str, Any]) -> Account:
    """`customer.subscription.updated`: a void `pause_collection` pauses, anything else
    (including `status: "paused"` without it, §7 item 3) applies the plan."""
    if is_void_pause(subscription):
        return subscription_apply_paused(subscription=subscription)
    return subscription_apply_active(subscription=subscription)
