"""`manage.py sync_pricing_plans` (billing_sync_jobs.md §1.15): apply every Stripe subscription
to its account as `customer.subscription.updated` would (§1.8.3, §1.8.4), e.g. after the plans'
product metadata changed. No processed-event record and no ordering check (there is no event);
each subscription is applied in its own transaction under its customer's lock. Subscriptions
that cannot be applied (unknown customer, customer without account, bad metadata) are reported
and skipped; Stripe being unavailable stops the command."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from billing import stripe
from billing.errors import EventRefused
from billing.services.events import is_transient, subscription_sync
from firezone.commands import OriginCommand


class Command(OriginCommand):
    help = "Apply every Stripe subscription's plan (limits, features) to its account."

    def handle(self, *args: Any, **options: Any) -> None:
        if not stripe.billing_enabled():
            raise CommandError("Billing is disabled (BILLING_ENABLED=false).")
        applied = skipped = 0
        try:
            for subscription in stripe.subscriptions_all():
                label = f"{subscription.get('id')} ({subscription.get('customer')})"
                try:
                    account = subscription_sync(subscription=subscription)
                except (EventRefused, stripe.StripeUnavailable) as exc:
                    if isinstance(exc, stripe.StripeUnavailable) and is_transient(exc):
                        raise
                    skipped += 1
                    self.stderr.write(f"{label}: skipped, {exc}")
                    continue
                applied += 1
                self.stdout.write(f"{label}: applied to account {account.slug}")
        except stripe.StripeUnavailable as exc:
            raise CommandError(f"Stripe is unavailable ({exc}); {applied} applied so far.") from exc
        self.stdout.write(
            self.style.SUCCESS(f"{applied} subscription(s) applied, {skipped} skipped.")
        )
