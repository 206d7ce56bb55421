"""Plan metadata → an account's limits and features (billing_sync_jobs.md §1.9). Pure.

`product.metadata` overlaid by `subscription.metadata` (the subscription wins); values are
Stripe's strings, JSON booleans and numbers are accepted too:

* `"true"`/`"false"` (or booleans) → booleans, kept for feature keys;
* limit keys: a number as is, `"unlimited"` → None (unlimited), a decimal string → int;
* `support_type`: the string is kept; every other key is dropped;
* `users_count` absent → the subscription item's `quantity` (the seat count).

Where the original crashed with a 500 (a non-numeric limit such as `"10 users"`, zero or several
subscription items) this raises `PlanError` with a message saying what is wrong, which the
event pipeline logs as a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accounts.features import ACCOUNT_FEATURES
from accounts.models import Account

LIMIT_KEYS: tuple[str, ...] = tuple(Account.LIMITS)
FEATURE_KEYS: tuple[str, ...] = ACCOUNT_FEATURES
_INTEGER = re.compile(r"[0-9]+")


class PlanError(ValueError):
    """The subscription or product cannot be turned into a plan (bad metadata, items)."""


@dataclass(frozen=True)
class Plan:
    # Every key of Account.FEATURES / Account.LIMITS (absent ones None: replaced wholesale).
    features: dict[str, bool | None]
    limits: dict[str, int | None]
    # None when neither metadata names one (the account's previous value is then kept).
    support_type: str | None


@dataclass(frozen=True)
class SubscriptionItem:
    product_id: str
    quantity: int | None


def subscription_item(subscription: Mapping[str, Any]) -> SubscriptionItem:
    """The subscription's only item: its price's product and its quantity."""
    items = (subscription.get("items") or {}).get("data")
    if not isinstance(items, list) or len(items) != 1:
        count = len(items) if isinstance(items, list) else 0
        raise PlanError(f"subscription has {count} items, expected exactly one")
    item = items[0] if isinstance(items[0], Mapping) else {}
    product = (item.get("price") or {}).get("product")
    if isinstance(product, Mapping):  # an expanded product
        product = product.get("id")
    if not isinstance(product, str) or not product:
        raise PlanError("subscription item has no price product")
    quantity = item.get("quantity")
    if quantity is not None and (not isinstance(quantity, int) or isinstance(quantity, bool)):
        raise PlanError(f"subscription item quantity {quantity!r} is not an integer")
    return SubscriptionItem(product_id=product, quantity=quantity)


def _boolean(value: Any) -> bool | None:
    if value is True or value == "true":
        return True
    if value is False or value == "false":
        return False
    return None


def _limit(key: str, value: Any) -> int | None:
    if value == "unlimited":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and _INTEGER.fullmatch(value)
    ):
        number = int(value)
    else:
        raise PlanError(f"limit {key}={value!r} is neither a number nor 'unlimited'")
    if number < 0:
        raise PlanError(f"limit {key}={value!r} is negative")
    return number


def plan_from_metadata(
    *,
    product_metadata: Mapping[str, Any] | None,
    subscription_metadata: Mapping[str, Any] | None,
    quantity: int | None,
) -> Plan:
    params = {**(product_metadata or {}), **(subscription_metadata or {})}
    features: dict[str, bool | None] = dict.fromkeys(FEATURE_KEYS)
    limits: dict[str, int | None] = dict.fromkeys(LIMIT_KEYS)
    support_type: str | None = None
    for key, value in params.items():
        if key in FEATURE_KEYS:
            # Anything but true/false (e.g. "yes") is dropped: the feature stays off.
            features[key] = _boolean(value)
        elif key in LIMIT_KEYS:
            limits[key] = _limit(key, value)
        elif key == "support_type" and isinstance(value, str):
            support_type = value
    if "users_count" not in params:
        limits["users_count"] = quantity
    return Plan(features=features, limits=limits, support_type=support_type)


def plan_for_subscription(*, subscription: Mapping[str, Any], product: Mapping[str, Any]) -> Plan:
    """The plan of a subscription whose (only) item's product is `product`."""
    item = subscription_item(subscription)
    return plan_from_metadata(
        product_metadata=product.get("metadata"),
        subscription_metadata=subscription.get("metadata"),
        quantity=item.quantity,
    )
