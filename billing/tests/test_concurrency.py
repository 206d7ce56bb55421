"""Two deliveries for one customer at once are serialised by the advisory lock (§1.7 step 2)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, connections

from accounts.models import Account
from billing.models import ProcessedStripeEvent
from billing.tests.helpers import post_event, provisioned_account
from tests.stripe_fake import FIXTURE_CUSTOMER, StripeFake, event


def _waiting_advisory_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_same_event_twice_at_once_is_applied_once(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    payload = event("customer_subscription_deleted")
    statuses: list[int] = []

    def deliver() -> None:
        try:
            statuses.append(post_event(payload).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    # Hold every Stripe answer: the first delivery waits inside its transaction (lock taken),
    # the second must then wait for the customer's lock, before any Stripe call of its own.
    with stripe_fake._lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _waiting_advisory_locks() < 1:
            assert time.monotonic() < deadline, "the second delivery never waited for the lock"
            time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200, 200]
    assert ProcessedStripeEvent.objects.filter(stripe_event_id=payload["id"]).count() == 1
    # The second delivery saw the first one's record: one customer lookup only.
    assert len(stripe_fake.requests("GET", f"/v1/customers/{FIXTURE_CUSTOMER}")) == 1
    account.refresh_from_db()
    assert account.disabled_reason == "Stripe subscription deleted"


@pytest.mark.django_db(transaction=True)
def test_two_events_of_one_customer_at_once(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    events: list[dict[str, Any]] = [
        event("customer_subscription_updated", created=1727700300),
        event("customer_subscription_paused", created=1727700301),
    ]
    statuses: list[int] = []

    def deliver(payload: dict[str, Any]) -> None:
        try:
            statuses.append(post_event(payload).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver, args=(payload,)) for payload in events]
    with stripe_fake._lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _waiting_advisory_locks() < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 200]
    assert ProcessedStripeEvent.objects.count() == 2
    account = Account.objects.get(pk=account.pk)
    # Both applied, one after the other, whichever got the lock first: the plan from the
    # update, and the disabled state of the last one.
    assert account.metadata["stripe"]["product_name"] == "Team"
    last = ProcessedStripeEvent.objects.order_by("processed_at").last()
    assert last is not None
    expected = "Stripe subscription paused" if last.event_type.endswith("paused") else None
    assert account.disabled_reason == expected
