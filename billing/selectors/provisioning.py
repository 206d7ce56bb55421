"""Where an account stands with Stripe (billing_sync_jobs.md §1.2 "Provisioned", §1.4).

Plain reads of `metadata.stripe` and the settings: no Stripe call, safe on every page.
"""

from __future__ import annotations

from collections.abc import Collection

from django.conf import settings

from accounts.models import Account
from billing.stripe import billing_enabled

# Account fields the Stripe customer mirrors (§1.5); `legal_name` alone does not trigger a push.
CUSTOMER_SYNC_FIELDS = frozenset({"name", "slug"})


def customer_id(account: Account) -> str | None:
    return account.stripe.get("customer_id") or None


def billing_provisioned(account: Account) -> bool:
    """Billing is on and the account has a Stripe customer (§1.2)."""
    return billing_enabled() and customer_id(account) is not None


def provisioning_pending(account: Account) -> bool:
    """Billing is on but the account has no Stripe customer yet: sign-up's provisioning failed
    (Stripe unavailable) and `billing.tasks.provision_account` is retrying it. The portal shows
    a "Billing is being set up" banner meanwhile. Always False with billing off."""
    return billing_enabled() and customer_id(account) is None


def customer_sync_needed(account: Account, changed: Collection[str]) -> bool:
    """After an account update that changed `changed` fields: must the Stripe customer be
    updated (§1.5)? Only a provisioned account whose name or slug changed."""
    return billing_provisioned(account) and not CUSTOMER_SYNC_FIELDS.isdisjoint(changed)


def stripe_dashboard_url(account: Account) -> str | None:
    """The customer's page on the Stripe dashboard (test-mode path with a test key), or None
    without a customer."""
    customer = customer_id(account)
    if customer is None:
        return None
    test_mode = settings.STRIPE_SECRET_KEY.startswith(("sk_test_", "rk_test_"))
    prefix = "https://dashboard.stripe.com/test" if test_mode else "https://dashboard.stripe.com"
    return f"{prefix}/customers/{customer}"
