"""Staff admin for billing bookkeeping (plan data itself is edited on the Account admin)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import AccountAdmin
from accounts.models import Account
from billing import stripe
from billing.errors import EventRefused
from billing.models import ProcessedStripeEvent
from billing.services.events import subscription_sync
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


# --- Account: "Re-sync plan from Stripe" (billing_sync_jobs.md §1.15) -------------------------


@admin.action(description="Re-sync plan from Stripe", permissions=["change"])
def resync_plan_from_stripe(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Account]
) -> None:
    """Fetch each selected account's subscription and apply it like `sync_pricing_plans`
    (limits, features, product, trial; paused → disabled). Accounts without a subscription
    are skipped."""
    if not stripe.billing_enabled():
        modeladmin.message_user(request, "Billing is disabled.", messages.ERROR)
        return
    synced = 0
    for account in queryset:
        subscription_id = account.stripe.get("subscription_id")
        if not subscription_id:
            modeladmin.message_user(
                request, f"{account.slug}: no Stripe subscription, skipped.", messages.WARNING
            )
            continue
        try:
            subscription = stripe.subscription_retrieve(str(subscription_id))
            subscription_sync(subscription=subscription)
        except (EventRefused, stripe.StripeUnavailable) as exc:
            modeladmin.message_user(request, f"{account.slug}: {exc}", messages.ERROR)
            continue
        modeladmin.log_change(request, account, "Plan re-synced from Stripe")
        synced += 1
    modeladmin.message_user(request, f"Re-synced {synced} account(s).", messages.SUCCESS)


AccountAdmin.actions = [*AccountAdmin.actions, resync_plan_from_stripe]
