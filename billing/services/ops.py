"""Ops helpers behind the console commands (billing_sync_jobs.md §1.15): create and provision
an account, add an admin or support user to one, hard-delete a disabled account."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from django.db import transaction

from accounts.models import Account, Actor, AuthIdentity, AuthProvider
from accounts.services.actors import actor_create_system
from accounts.services.identities import identity_create_system
from billing import stripe
from billing.services.provisioning import account_billing_provision
from firezone import changes
from firezone.errors import NotFound, Refused
from resources.services.provisioning import Provisioned, account_provision

MSG_NOT_DISABLED = "the account is not disabled: disable it first (cancel its subscription)"
MSG_NO_EMAIL_PROVIDER = "the account has no enabled email provider"


@dataclass(frozen=True)
class Created:
    provisioned: Provisioned
    # None when Stripe was unavailable (the retry task carries on) or billing is off.
    billing_error: stripe.StripeUnavailable | None


def account_create_provisioned(
    *, name: str, slug: str, admin_name: str, admin_email: str
) -> Created:
    """`create_and_provision_account` (§1.4): an account ready for its admin's first email
    sign-in (resources' `account_provision`, billing email = `admin_email`), then its Stripe
    customer and subscription.

    Not atomic as a whole, on purpose: the account is committed first (its post-provision hook
    already tries billing and schedules retries), so a Stripe outage never loses it; the billing
    step is repeated here (a no-op when the hook succeeded) to report its outcome. Must not run
    inside an outer transaction. Raises ValidationFailed for bad input (nothing kept).
    """
    provisioned = account_provision(
        name=name, slug=slug, legal_name=None, admin_name=admin_name, admin_email=admin_email
    )
    try:
        account = account_billing_provision(account=provisioned.account)
    except stripe.StripeUnavailable as exc:
        return Created(provisioned=provisioned, billing_error=exc)
    return Created(provisioned=replace(provisioned, account=account), billing_error=None)


@transaction.atomic
def account_user_provision(
    *, account_slug: str, name: str, email: str, type: str = Actor.Type.ACCOUNT_ADMIN_USER
) -> AuthIdentity:
    """`provision_account_user` / `provision_support_by_account_slug` (§1.15): a new actor of
    `type` in the account with slug `account_slug`, with an identity at the account's email
    provider. Raises NotFound (no such account), Refused (no enabled email provider),
    ValidationFailed (name, type, email)."""
    account = Account.objects.filter(slug=account_slug).first()
    if account is None:
        raise NotFound(f"no account with slug {account_slug!r}")
    provider = (
        AuthProvider.objects.filter(
            account=account, adapter=AuthProvider.Adapter.EMAIL, disabled_at__isnull=True
        )
        .order_by("inserted_at")
        .first()
    )
    if provider is None:
        raise Refused(MSG_NO_EMAIL_PROVIDER, code="no_email_provider")
    actor = actor_create_system(account=account, name=name, type=type)
    return identity_create_system(actor=actor, provider=provider, provider_identifier=email)


@transaction.atomic
def account_delete_disabled(*, account_id: uuid.UUID | str) -> Account:
    """`delete_disabled_account` (§1.15): hard-delete a disabled account and everything in it,
    every deleted row recorded in the change log (`changes.delete`). The documented termination
    procedure: cancel the subscription in Stripe → the webhook disables the account → this.
    Raises NotFound (no such account) or Refused (the account is not disabled)."""
    account = Account.objects.select_for_update().filter(pk=account_id).first()
    if account is None:
        raise NotFound(f"no account {account_id}")
    if account.disabled_at is None:
        raise Refused(MSG_NOT_DISABLED, code="not_disabled")
    changes.delete(account)
    return account
