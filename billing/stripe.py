"""The Stripe boundary (billing_sync_jobs.md §1.3): every call Firezone makes to Stripe.

Through the official SDK's `StripeClient`, pinned to API version 2023-10-16, at
`STRIPE_API_BASE` (a local fake in tests and development). Results are plain dicts (the SDK's
objects converted), so callers and tests never handle SDK types.

Retries follow the original, not the SDK: a 429 is retried up to `STRIPE_MAX_RETRIES` times
after `min(base·2^n + jitter, max)` (jitter < 10 % of the step); a 5xx, another 4xx or a
transport error is not retried. Every failure is a `StripeUnavailable` ("retry later") carrying
the status and the decoded body, logged once here.

Nothing here runs with `BILLING_ENABLED` off: callers check `billing_enabled()` first, and
`_client()` refuses, so a forgotten check is a loud bug rather than a silent call to Stripe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import stripe
from django.conf import settings

logger = logging.getLogger(__name__)

API_VERSION = "2023-10-16"
T = TypeVar("T")


class StripeUnavailable(Exception):
    """A Stripe call failed: try again later. `status` is None for transport errors."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class BillingDisabled(RuntimeError):
    """A Stripe call was attempted with `BILLING_ENABLED` off (a bug in the caller)."""


def billing_enabled() -> bool:
    return bool(settings.BILLING_ENABLED)


def _client() -> stripe.StripeClient:
    if not billing_enabled():
        raise BillingDisabled("Stripe is not called with BILLING_ENABLED off")
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        stripe_version=API_VERSION,
        base_addresses={"api": settings.STRIPE_API_BASE.rstrip("/")},
        # Our own retry policy below; the SDK's would also retry 5xx and connection errors.
        max_network_retries=0,
    )


def retry_delay(attempt: int) -> float:
    """Seconds before retry `attempt` (0, 1, 2, ...): base·2^n plus < 10 % jitter, capped."""
    step = settings.STRIPE_RETRY_BASE_DELAY_MS * 2**attempt
    jitter = random.uniform(0, 0.1 * step)
    return min(round(step + jitter), settings.STRIPE_RETRY_MAX_DELAY_MS) / 1000


def _call(what: str, request: Callable[[stripe.StripeClient], T]) -> T:
    client = _client()
    attempt = 0
    while True:
        try:
            return request(client)
        except stripe.RateLimitError as exc:
            if attempt >= settings.STRIPE_MAX_RETRIES:
                raise _unavailable(what, exc) from exc
            time.sleep(retry_delay(attempt))
            attempt += 1
        except stripe.StripeError as exc:
            raise _unavailable(what, exc) from exc


def _unavailable(what: str, exc: stripe.StripeError) -> StripeUnavailable:
    body = exc.json_body if exc.json_body is not None else exc.http_body
    logger.warning("Stripe %s failed: status=%s body=%r", what, exc.http_status, body)
    return StripeUnavailable(f"Stripe {what} failed", status=exc.http_status, body=body)


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _account_metadata(account: Any) -> dict[str, str]:
    return {
        "account_id": str(account.pk),
        "account_name": account.name,
        "account_slug": account.slug,
    }


# --- calls --------------------------------------------------------------------------------------


def _once(what: str, params: Any) -> Any:
    """Request options making a create idempotent: Stripe answers a request repeated with the
    same `Idempotency-Key` (within 24 h) with its first answer instead of creating again. Tasks
    acknowledge late (README "Supervision"): a worker killed between Stripe's answer and our
    commit has the task redone, which then gets the same customer or subscription, not a second
    one. The key is derived from the parameters (which name the account or the customer):
    Stripe refuses a key reused with other parameters."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:40]
    return {"idempotency_key": f"firezone-{what}-{digest}"}


def customer_create(*, account: Any, email: str | None) -> dict[str, Any]:
    """`POST /v1/customers`: name = legal name, the account's three metadata keys, the email
    only when there is one."""
    # The SDK types its params as TypedDicts; ours are checked by the fake Stripe's tests.
    params: Any = {"name": account.legal_name, "metadata": _account_metadata(account)}
    if email is not None:
        params["email"] = email
    options = _once("customer", params)
    return _call("create customer", lambda c: _plain(c.v1.customers.create(params, options)))


def customer_update(*, customer_id: str, account: Any) -> dict[str, Any]:
    """`POST /v1/customers/{id}`: name = legal name and the three metadata keys (no email)."""
    params: Any = {"name": account.legal_name, "metadata": _account_metadata(account)}
    return _call("update customer", lambda c: _plain(c.v1.customers.update(customer_id, params)))


def customer_retrieve(customer_id: str) -> dict[str, Any]:
    return _call("retrieve customer", lambda c: _plain(c.v1.customers.retrieve(customer_id)))


def subscription_create(*, customer_id: str, price_id: str) -> dict[str, Any]:
    params: Any = {"customer": customer_id, "items": [{"price": price_id}]}
    options = _once("subscription", params)
    return _call(
        "create subscription", lambda c: _plain(c.v1.subscriptions.create(params, options))
    )


def product_retrieve(product_id: str) -> dict[str, Any]:
    return _call("retrieve product", lambda c: _plain(c.v1.products.retrieve(product_id)))


def subscription_retrieve(subscription_id: str) -> dict[str, Any]:
    """`GET /v1/subscriptions/{id}` (the staff admin's "Re-sync plan from Stripe")."""
    return _call(
        "retrieve subscription", lambda c: _plain(c.v1.subscriptions.retrieve(subscription_id))
    )


def subscriptions_all() -> Iterator[dict[str, Any]]:
    """Every subscription, page by page (`starting_after` the last id while `has_more`)."""
    starting_after: str | None = None
    while True:
        page = _call("list subscriptions", _list_page(starting_after))
        data = page.get("data") or []
        yield from data
        if not page.get("has_more") or not data:
            return
        starting_after = data[-1]["id"]


def _list_page(starting_after: str | None) -> Callable[[stripe.StripeClient], dict[str, Any]]:
    params: Any = {"starting_after": starting_after} if starting_after else {}
    return lambda c: _plain(c.v1.subscriptions.list(params))


def billing_portal_session_create(*, customer_id: str, return_url: str) -> dict[str, Any]:
    params: Any = {"customer": customer_id, "return_url": return_url}
    return _call(
        "create billing portal session",
        lambda c: _plain(c.v1.billing_portal.sessions.create(params)),
    )
