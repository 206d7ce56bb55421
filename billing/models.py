"""Stripe webhook idempotency (domain.md §1.19). Account plan data lives on accounts.Account."""

# NULL is meaningful in this schema (CHECK constraints and partial indexes test IS NULL),
# so nullable string columns are deliberate.
# ruff: noqa: DJ001

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class ProcessedStripeEvent(models.Model):
    """A Stripe event already handled: skip duplicates and older events of the same type."""

    stripe_event_id = models.CharField(max_length=255, primary_key=True)
    event_type = models.CharField(max_length=255)
    processed_at = models.DateTimeField(default=timezone.now)
    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True)
    # Stripe's `created` (unix seconds) of the event.
    event_created_at = models.DateTimeField()
    livemode = models.BooleanField(default=False)
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(stripe_event_id__startswith="evt_"),
                name="processed_stripe_events_event_id_format",
            ),
            models.CheckConstraint(
                condition=Q(stripe_customer_id__isnull=True)
                | Q(stripe_customer_id__startswith="cus_"),
                name="processed_stripe_events_customer_id_format",
            ),
        ]
        indexes = [
            models.Index(
                fields=["stripe_customer_id", "event_type"], name="stripe_events_cus_type_idx"
            ),
            models.Index(
                fields=["stripe_customer_id", "event_created_at"],
                name="stripe_events_cus_created_idx",
            ),
            # The cleanup helper deletes by age.
            models.Index(fields=["processed_at"], name="stripe_events_processed_idx"),
        ]

    def __str__(self) -> str:
        return self.stripe_event_id
