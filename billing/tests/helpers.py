"""Posting signed events to the webhook on the API origin, and a provisioned account."""

from __future__ import annotations

import json
import time
from typing import Any

from django.test import Client

from accounts.models import Account
from accounts.tests.factories import AccountFactory
from tests.api import API_HOST
from tests.stripe_fake import FIXTURE_CUSTOMER, PRODUCTS, StripeFake, signature

WEBHOOK = "/integrations/stripe/webhooks"
STARTER_LIMITS = {
    "users_count": 6,
    "monthly_active_users_count": None,
    "service_accounts_count": 10,
    "gateway_groups_count": 10,
    "account_admin_users_count": 1,
}


def post_raw(body: bytes, header: str | None, client: Client | None = None) -> Any:
    extra: dict[str, Any] = {} if header is None else {"HTTP_STRIPE_SIGNATURE": header}
    return (client or Client()).post(
        WEBHOOK, data=body, content_type="application/json", HTTP_HOST=API_HOST, **extra
    )


def post_event(event: dict[str, Any], *, t: int | None = None, client: Client | None = None) -> Any:
    body = json.dumps(event).encode()
    return post_raw(body, signature(body, t=t if t is not None else int(time.time())), client)


def provisioned_account(stripe_fake: StripeFake, **fields: Any) -> Account:
    """An account with the fixtures' customer (Stripe resolves it to the account), on Starter."""
    defaults = {
        "metadata": {"stripe": {"customer_id": FIXTURE_CUSTOMER, "product_name": "Starter"}},
        "limits": dict(STARTER_LIMITS),
    }
    account = AccountFactory(**{**defaults, **fields})
    stripe_fake.add_customer(FIXTURE_CUSTOMER, account_id=account.pk)
    return account


def with_item(event: dict[str, Any], product: str, quantity: int) -> dict[str, Any]:
    """The event's subscription with its only item on `product` (key of PRODUCTS or an id)."""
    item = event["data"]["object"]["items"]["data"][0]
    item["price"]["product"] = PRODUCTS.get(product, product)
    item["quantity"] = quantity
    event["data"]["object"]["quantity"] = quantity
    return event
