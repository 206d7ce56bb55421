"""Provisioning an account in Stripe (billing_sync_jobs.md §1.4) and pushing its name and slug
to the customer afterwards (§1.5).

`account_billing_provision` creates the customer, then the default-price subscription. Each
step runs in its own transaction holding the account row lock across the Stripe call, so
concurrent attempts (sign-up's hook, the retry task, an ops command) wait for one another and
the second finds the customer already stored: never two customers for one account. The customer
is committed before the subscription is asked for, so a failure in between does not lose it (a
retry would otherwise create a second one); `account_billing_subscribe` finishes such an account
(the retry task calls both).

Failures raise `billing.stripe.StripeUnavailable` ("retry later") and leave the account as it
was before the failing step.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from accounts.models import Account
from accounts.services.accounts import account_update_system
from billing import stripe
from billing.selectors.provisioning import customer_id

logger = logging.getLogger(__name__)


def _locked(account: Account) -> Account:
    return Account.objects.select_for_update().get(pk=account.pk)


def account_billing_provision(*, account: Account) -> Account:
    """Create the account's Stripe customer and default subscription (§1.4 steps 1-4).

    No-op (no Stripe call) with billing off or when the account already has a customer. The
    customer gets `name = legal_name`, `email = metadata.stripe.billing_email` (only when set)
    and the account id, name and slug as metadata; `customer_id`, Stripe's echoed
    `billing_email` and then `subscription_id` are merged into `metadata.stripe`.

    Deliberately two transactions, not one (see the module docstring). Raises
    StripeUnavailable.
    """
    if not stripe.billing_enabled():
        return account
    account, created = _customer_create(account=account)
    if not created:
        return account
    return account_billing_subscribe(account=account)


@transaction.atomic
def _customer_create(*, account: Account) -> tuple[Account, bool]:
    account = _locked(account)
    if customer_id(account) is not None:
        return account, False
    customer = stripe.customer_create(
        account=account, email=account.stripe.get("billing_email") or None
    )
    account = account_update_system(
        account=account,
        metadata={
            "stripe": {"customer_id": customer["id"], "billing_email": customer.get("email")}
        },
    )
    logger.info("account %s: Stripe customer %s created", account.pk, customer["id"])
    return account, True


@transaction.atomic
def account_billing_subscribe(*, account: Account) -> Account:
    """Subscribe the account's customer to `STRIPE_DEFAULT_PRICE_ID` and store
    `subscription_id`; no-op with billing off, without a customer or with a subscription
    already stored. Raises StripeUnavailable."""
    if not stripe.billing_enabled():
        return account
    account = _locked(account)
    customer = customer_id(account)
    if customer is None or account.stripe.get("subscription_id"):
        return account
    subscription = stripe.subscription_create(
        customer_id=customer, price_id=settings.STRIPE_DEFAULT_PRICE_ID
    )
    account = account_update_system(
        account=account, metadata={"stripe": {"subscription_id": subscription["id"]}}
    )
    logger.info("account %s: Stripe subscription %s created", account.pk, subscription["id"])
    return account


def account_billing_customer_sync(*, account: Account) -> Account:
    """Push the account's legal name, name and slug to its Stripe customer (§1.5): `POST
    /v1/customers/{id}`, no email. No-op with billing off or without a customer. Writes nothing
    to the database. Raises StripeUnavailable."""
    customer = customer_id(account)
    if not stripe.billing_enabled() or customer is None:
        return account
    stripe.customer_update(customer_id=customer, account=account)
    return account
