"""Stripe customers → accounts (billing_sync_jobs.md §1.7 "fetch account id", §1.8.1, §1.8.2).

* `account_for_customer`: the account a Stripe customer belongs to, by the `account_id` Firezone
  wrote into the customer's metadata (`GET /v1/customers/{id}`).
* `account_create_from_customer` (`customer.created`): the sales-led flow, a customer created in
  the Stripe dashboard with `company_website`, `account_owner_first_name` and
  `account_owner_last_name` becomes a ready account (no email is sent).
* `account_sync_from_customer` (`customer.updated`): name, legal name, billing email and slug.

Permanent refusals raise `EventRefused` (reasons `missing_custom_metadata`, `slug_taken`,
`failed_account_creation`, `invalid_account_update`, `customer_not_provisioned`, `not_found`);
a Stripe failure raises `StripeUnavailable`. The caller (billing/services/events.py) runs these
in its transaction, so either way nothing is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from accounts.models import Account
from accounts.services.accounts import MSG_TAKEN, account_update_system
from billing import stripe
from billing.errors import AccountNotFound, CustomerNotProvisioned, EventRefused
from firezone.errors import ValidationFailed
from resources.services.provisioning import account_provision

SALES_KEYS = ("company_website", "account_owner_first_name", "account_owner_last_name")
SALES_PROVIDER_NAME = "Email (OTP)"


def account_for_customer(customer_id: str) -> Account:
    """The account of a Stripe customer, fetched from Stripe (its `metadata.account_id`).

    Raises CustomerNotProvisioned (no account_id), AccountNotFound (no such account),
    StripeUnavailable."""
    customer = stripe.customer_retrieve(customer_id)
    account_id = (customer.get("metadata") or {}).get("account_id")
    if not account_id:
        raise CustomerNotProvisioned(customer_id)
    try:
        account_uuid = uuid.UUID(str(account_id))
    except ValueError:
        raise AccountNotFound(str(account_id)) from None
    account = Account.objects.filter(pk=account_uuid).first()
    if account is None:
        raise AccountNotFound(str(account_id))
    return account


def slug_from_website(website: Any) -> str | None:
    """`https://www.big-co.co.uk` → `www_big_co_co`: the host (or, without a scheme, the
    path), its last label dropped, dots and dashes as underscores, lower-cased. None when
    nothing is left (a random slug is then generated)."""
    if not isinstance(website, str):
        return None
    parts = urlsplit(website.strip())
    source = parts.hostname or parts.path
    labels = source.split(".")[:-1]
    slug = "_".join(labels).replace("-", "_").lower()
    return slug or None


@transaction.atomic
def account_create_from_customer(*, customer: Mapping[str, Any]) -> Account | None:
    """`customer.created` (§1.8.1). None when the customer is Firezone's own (it carries an
    `account_id`): nothing to do."""
    metadata = customer.get("metadata") or {}
    if metadata.get("account_id"):
        return None
    if not all(key in metadata for key in SALES_KEYS):
        raise EventRefused(
            "missing_custom_metadata",
            f"customer {customer.get('id')} lacks one of {', '.join(SALES_KEYS)}",
        )
    customer_id = str(customer["id"])
    email = customer.get("email")
    first = str(metadata.get("account_owner_first_name") or "")
    last = str(metadata.get("account_owner_last_name") or "")
    try:
        provisioned = account_provision(
            # Missing values fail the account's validation (→ failed_account_creation).
            name=metadata.get("account_name") or customer.get("name") or "",
            slug=metadata.get("account_slug") or slug_from_website(metadata["company_website"]),
            legal_name=customer.get("name"),
            admin_name=f"{first} {last}".strip(),
            admin_email=metadata.get("account_admin_email") or email or "",
            metadata={"stripe": {"customer_id": customer_id}},
            billing_email=email,
            provider_name=SALES_PROVIDER_NAME,
        )
    except ValidationFailed as exc:
        if MSG_TAKEN in exc.errors.get("slug", []):
            raise EventRefused("slug_taken", str(exc.errors)) from exc
        raise EventRefused("failed_account_creation", str(exc.errors)) from exc
    account = provisioned.account
    # Tell Stripe which account the customer is, then give it the default plan; its limits and
    # features arrive with `customer.subscription.created`.
    stripe.customer_update(customer_id=customer_id, account=account)
    subscription = stripe.subscription_create(
        customer_id=customer_id, price_id=settings.STRIPE_DEFAULT_PRICE_ID
    )
    return account_update_system(
        account=account, metadata={"stripe": {"subscription_id": subscription["id"]}}
    )


@transaction.atomic
def account_sync_from_customer(*, customer: Mapping[str, Any]) -> Account | None:
    """`customer.updated` (§1.8.2): copy the customer's names, email and slug to its account.
    A customer without an account goes through the `customer.created` flow with the event's
    customer; an `account_id` naming no account is a no-op (None)."""
    try:
        account = account_for_customer(str(customer["id"]))
    except CustomerNotProvisioned:
        return account_create_from_customer(customer=customer)
    except AccountNotFound:
        return None
    metadata = customer.get("metadata") or {}
    attrs: dict[str, Any] = {
        "name": metadata.get("account_name") or customer.get("name"),
        "legal_name": customer.get("name"),
        "metadata": {"stripe": {"billing_email": customer.get("email")}},
    }
    if metadata.get("account_slug"):
        attrs["slug"] = metadata["account_slug"]
    try:
        return account_update_system(account=account, **attrs)
    except ValidationFailed as exc:
        raise EventRefused("invalid_account_update", str(exc.errors)) from exc
