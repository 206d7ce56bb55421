from __future__ import annotations

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # Wiring (Django's documented place): sign-up's post-provision hook creates the Stripe
        # customer, account updates push a new name or slug to it (billing_sync_jobs.md §1.4-5).
        from accounts.signals import account_updated
        from billing.tasks import enqueue_customer_sync, provision_after_sign_up
        from resources.services.provisioning import POST_PROVISION_HOOKS

        if provision_after_sign_up not in POST_PROVISION_HOOKS:
            POST_PROVISION_HOOKS.append(provision_after_sign_up)
        account_updated.connect(enqueue_customer_sync, dispatch_uid="billing.customer_sync")
