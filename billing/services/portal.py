"""The Stripe customer portal (billing_sync_jobs.md §1.11): the billing page's "Manage"."""

from __future__ import annotations

from django.conf import settings

from accounts.auth import P, Subject, ensure_permissions
from accounts.selectors.accounts import account_get
from billing import stripe
from billing.selectors.provisioning import billing_provisioned
from firezone.errors import NotFound


def billing_return_url(slug: str) -> str:
    """Where Stripe sends the browser back: `<EXTERNAL_URL>/<slug>/settings/billing`."""
    return f"{settings.EXTERNAL_URL.rstrip('/')}/{slug}/settings/billing"


def billing_portal_session_create(*, subject: Subject) -> str:
    """A customer-portal session for the subject's account; returns its URL
    (`https://billing.stripe.com/p/session/...`). Needs "manage own account billing" (admins);
    NotFound for an account that is not provisioned; `StripeUnavailable` when Stripe fails."""
    ensure_permissions(subject, P.BILLING_MANAGE_OWN)
    account = account_get(subject)
    if not billing_provisioned(account):
        raise NotFound()
    session = stripe.billing_portal_session_create(
        customer_id=account.stripe["customer_id"], return_url=billing_return_url(account.slug)
    )
    return str(session["url"])
