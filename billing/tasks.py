"""Celery tasks of the billing app (billing_sync_jobs.md §1, §3): thin, over the services.

Provisioning and customer sync (§1.4, §1.5):

Stripe being unavailable never loses an account: sign-up commits the account first, then
`provision_after_sign_up` (a post-provision hook, registered in billing/apps.py) tries the Stripe
provisioning once in the request; if Stripe fails, `provision_account` retries it in the
background with exponential back-off (30 s, 1 min, 2 min, … capped at 1 h, with jitter, 12
retries ≈ 8 h). Meanwhile the portal shows "Billing is being set up"
(`billing.selectors.provisioning.provisioning_pending`).

`enqueue_customer_sync` receives `accounts.signals.account_updated`: after the update commits,
a provisioned account whose name or slug changed gets `sync_stripe_customer`, retried the same
way.

Periodic jobs (beat schedule in firezone/celery.py, §3.2), each run once at a time across
workers (`single_run`): the account limits check and the processed-events retention.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection
from typing import Any

from celery import shared_task
from django.db import transaction

from accounts.models import Account
from billing.selectors.provisioning import customer_sync_needed, provisioning_pending
from billing.services.limits_check import accounts_limits_check
from billing.services.provisioning import (
    account_billing_customer_sync,
    account_billing_provision,
    account_billing_subscribe,
)
from billing.services.retention import processed_events_delete_old
from billing.stripe import StripeUnavailable, billing_enabled
from firezone.jobs import single_run

logger = logging.getLogger(__name__)

# Retries of a Stripe call that failed ("retry later"): exponential back-off from 30 s, capped
# at 1 h, full jitter; bounded.
STRIPE_RETRY = {
    "autoretry_for": (StripeUnavailable,),
    "retry_backoff": 30,
    "retry_backoff_max": 3600,
    "retry_jitter": True,
    "max_retries": 12,
}
FIRST_RETRY_SECONDS = 30


@shared_task(name="billing.tasks.provision_account", ignore_result=True, **STRIPE_RETRY)
def provision_account(account_id: str) -> None:
    """Create the account's Stripe customer and subscription, finishing a provisioning that
    stopped between the two; a no-op for a provisioned (or deleted) account."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return
    account = account_billing_provision(account=account)
    account_billing_subscribe(account=account)


@shared_task(name="billing.tasks.sync_stripe_customer", ignore_result=True, **STRIPE_RETRY)
def sync_stripe_customer(account_id: str) -> None:
    """Push the account's current legal name, name and slug to its Stripe customer (§1.5)."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return
    account_billing_customer_sync(account=account)


def provision_after_sign_up(account: Account) -> None:
    """Post-provision hook (resources.services.provisioning.POST_PROVISION_HOOKS), run after
    the sign-up commits: provision now; if Stripe is unavailable, schedule the retries."""
    if not provisioning_pending(account):
        return
    try:
        account_billing_provision(account=account)
    except StripeUnavailable:
        logger.warning("account %s: Stripe provisioning failed, retrying later", account.pk)
        provision_account.apply_async((str(account.pk),), countdown=FIRST_RETRY_SECONDS)


def enqueue_customer_sync(
    sender: Any, *, account: Account, changed: Collection[str], **kwargs: Any
) -> None:
    """`account_updated` receiver (inside the update's transaction): after commit, push a
    changed name or slug of a provisioned account to Stripe."""
    if customer_sync_needed(account, changed):
        transaction.on_commit(
            functools.partial(sync_stripe_customer.delay, str(account.pk)), robust=True
        )


@shared_task(name="billing.tasks.check_account_limits", ignore_result=True)
def check_account_limits() -> int | None:
    """Every 5 minutes, only with billing on (§1.13): set or clear the limits warning of every
    active provisioned account. None when skipped (billing off, or another run going on)."""
    if not billing_enabled():
        return None
    with single_run("billing.check_account_limits") as acquired:
        return accounts_limits_check() if acquired else None


@shared_task(name="billing.tasks.cleanup_processed_stripe_events", ignore_result=True)
def cleanup_processed_stripe_events() -> int | None:
    """Daily (§1.7 retention): delete processed Stripe events older than 30 days."""
    with single_run("billing.cleanup_processed_stripe_events") as acquired:
        return processed_events_delete_old() if acquired else None
