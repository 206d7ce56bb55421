"""The Stripe event pipeline (billing_sync_jobs.md §1.7): one verified webhook event in, the
account changes of §1.8 out, each event applied at most once and in order per customer.

`event_process(event=…)`:

1. customer id: the object's `id` for a customer, else its `customer`; none → skipped, nothing
   recorded (e.g. `product.updated`);
2. one transaction holding `pg_advisory_xact_lock(<64-bit hash of the customer id>)`, so all
   events of a customer are handled one at a time, across processes;
3. an event id already in `ProcessedStripeEvent` → skipped ("duplicate");
4. an event of the same customer and type already processed with a `created` not strictly
   older → skipped ("old"; two events of one type in the same second: the second is skipped,
   §7 item 2);
5. dispatch by type (§1.8; unknown types are no-ops), then record the event.

**Failures (§7 item 1, our decision).** The original answers 200 to every handled event, even
when the handler failed, so Stripe never retries a failure. Here, a failure rolls back
everything (account changes and the record) and is logged, and then:

* a *permanent refusal* (`EventRefused`: sales metadata missing, slug taken, customer without
  account, unknown account, a plan that does not map, validation errors; also a Stripe 4xx such
  as an unknown customer or product) → `Outcome("refused")`, answered **200**: retrying the
  same event cannot succeed;
* a *transient failure* (`StripeUnavailable` with a 429 after the retries, a 5xx or a
  transport error, while resolving the customer, fetching the product or creating the
  subscription) propagates; the webhook answers **503** and Stripe retries the delivery later.
  Retrying is safe: nothing was kept, and the idempotency and ordering checks run again.

Any other exception is a bug and is a 500 (Stripe retries it too).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Max

from billing import stripe, webhooks
from billing.errors import EventRefused
from billing.models import ProcessedStripeEvent
from billing.services.customers import account_create_from_customer, account_sync_from_customer
from billing.services.subscriptions import (
    subscription_apply_active,
    subscription_apply_deleted,
    subscription_apply_paused,
    subscription_apply_updated,
)

logger = logging.getLogger(__name__)

PROCESSED = "processed"
DUPLICATE = "duplicate"
NO_CUSTOMER = "no_customer"
OLD = "old"
REFUSED = "refused"


@dataclass(frozen=True)
class Outcome:
    status: str  # one of the constants above
    reason: str = ""


def _object(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return event["data"]["object"]


HANDLERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "customer.created": lambda obj: account_create_from_customer(customer=obj),
    "customer.updated": lambda obj: account_sync_from_customer(customer=obj),
    "customer.subscription.created": lambda obj: subscription_apply_active(subscription=obj),
    "customer.subscription.resumed": lambda obj: subscription_apply_active(subscription=obj),
    "customer.subscription.updated": lambda obj: subscription_apply_updated(subscription=obj),
    "customer.subscription.paused": lambda obj: subscription_apply_paused(subscription=obj),
    "customer.subscription.deleted": lambda obj: subscription_apply_deleted(subscription=obj),
    # Everything else (customer.deleted included, §1.8) is recorded and otherwise ignored.
}


def customer_lock_key(customer_id: str) -> int:
    """A stable signed 64-bit key for `pg_advisory_xact_lock` (the first 8 bytes of SHA-256)."""
    digest = hashlib.sha256(customer_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def customer_lock(customer_id: str) -> None:
    """Serialise the current transaction with every other one working on this customer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [customer_lock_key(customer_id)])


def event_customer_id(event: Mapping[str, Any]) -> str | None:
    customer = webhooks.event_customer_id(event)
    return customer if isinstance(customer, str) and customer else None


def is_transient(exc: stripe.StripeUnavailable) -> bool:
    """A 429 (after the retries), a 5xx or no answer: worth retrying. Other 4xx are not."""
    return exc.status is None or exc.status == 429 or exc.status >= 500


def event_process(*, event: Mapping[str, Any]) -> Outcome:
    """Apply one verified event (see the module docstring). Raises StripeUnavailable for
    transient Stripe failures (nothing kept)."""
    customer_id = event_customer_id(event)
    if customer_id is None:
        logger.info("Stripe event %s (%s) has no customer: skipped", event["id"], event["type"])
        return Outcome(NO_CUSTOMER)
    try:
        return _process(event, customer_id)
    except EventRefused as exc:
        logger.warning(
            "Stripe event %s (%s) of %s not applied: %s",
            event["id"],
            event["type"],
            customer_id,
            exc,
        )
        return Outcome(REFUSED, exc.reason)
    except stripe.StripeUnavailable as exc:
        if is_transient(exc):
            logger.warning(
                "Stripe event %s (%s) of %s failed, Stripe will retry: %s (status %s)",
                event["id"],
                event["type"],
                customer_id,
                exc,
                exc.status,
            )
            raise
        logger.warning(
            "Stripe event %s (%s) of %s not applied: %s (status %s, body %r)",
            event["id"],
            event["type"],
            customer_id,
            exc,
            exc.status,
            exc.body,
        )
        return Outcome(REFUSED, "stripe_error")


@transaction.atomic
def _process(event: Mapping[str, Any], customer_id: str) -> Outcome:
    customer_lock(customer_id)
    event_id, event_type = str(event["id"]), str(event["type"])
    if ProcessedStripeEvent.objects.filter(stripe_event_id=event_id).exists():
        logger.info("Stripe event %s already processed: skipped", event_id)
        return Outcome(DUPLICATE)
    created = datetime.fromtimestamp(int(event["created"]), UTC)
    latest = ProcessedStripeEvent.objects.filter(
        stripe_customer_id=customer_id, event_type=event_type
    ).aggregate(latest=Max("event_created_at"))["latest"]
    if latest is not None and created <= latest:
        logger.info(
            "Stripe event %s (%s) is not newer than the last one processed (%s): skipped",
            event_id,
            event_type,
            latest.isoformat(),
        )
        return Outcome(OLD)
    handler = HANDLERS.get(event_type)
    if handler is not None:
        handler(_object(event))
    ProcessedStripeEvent.objects.create(
        stripe_event_id=event_id,
        event_type=event_type,
        stripe_customer_id=customer_id,
        event_created_at=created,
        livemode=bool(event.get("livemode", False)),
    )
    return Outcome(PROCESSED)


@transaction.atomic
def subscription_sync(*, subscription: Mapping[str, Any]) -> Any:
    """Apply a subscription as `customer.subscription.updated` would, without an event: no
    idempotency record nor ordering check (`sync_pricing_plans`, the admin's "Re-sync plan").
    Holds the customer's lock like the webhook. Raises EventRefused, StripeUnavailable."""
    customer = subscription.get("customer")
    if isinstance(customer, str) and customer:
        customer_lock(customer)
    return subscription_apply_updated(subscription=subscription)
