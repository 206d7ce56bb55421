"""Staff admin for billing bookkeeping (plan data itself is edited on the Account admin)."""

from __future__ import annotations

from django.contrib import admin

from billing.models import ProcessedStripeEvent
from firezone.web.admin import ReadOnlyAdminMixin


@admin.register(ProcessedStripeEvent)
class ProcessedStripeEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "stripe_event_id",
        "event_type",
        "stripe_customer_id",
        "event_created_at",
        "processed_at",
        "livemode",
    )
    list_filter = ("event_type", "livemode")
    # Search by event id, customer or type (e.g. `cus_…` or `customer.subscription.updated`).
    search_fields = ("stripe_event_id", "stripe_customer_id", "event_type")
    ordering = ("-processed_at",)
