"""Self-service sign-up: one call that creates a ready-to-use account (domain.md §2.1 "Sign-up",
billing_sync_jobs.md §1.4).

Everything is written in one transaction: the account, its managed "Everyone" group, the "Email"
provider, the admin actor and its email identity, a "Default Site", the system Internet site and
the Internet resource. Invalid input (name, slug, admin name or email) raises `ValidationFailed`
with all field errors at once and writes nothing.

After the transaction commits, every callable in `POST_PROVISION_HOOKS` is called with the new
account (through `transaction.on_commit`, so nothing runs for a rolled-back sign-up). Billing
appends its "create the Stripe customer and subscription" step there; a hook failure is logged
and does not undo the committed account (the original leaves such accounts unprovisioned too,
billing_sync_jobs.md §1.4 step 5).
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from accounts.auth import Subject
from accounts.models import Account, Actor, ActorGroup, AuthIdentity, AuthProvider
from accounts.services.accounts import account_create, deep_merge
from accounts.services.actors import actor_create_system, clean_actor_name
from accounts.services.groups import group_create_everyone
from accounts.services.identities import email_errors, identity_create_system
from accounts.services.providers import provider_create_system
from firezone.errors import ValidationFailed
from gateways.models import Site
from gateways.services.sites import site_create, site_create_internet
from resources.models import Resource
from resources.services.resources import resource_create_internet

logger = logging.getLogger(__name__)

EMAIL_PROVIDER_NAME = "Email"
DEFAULT_SITE_NAME = "Default Site"

# Called as hook(account) after the sign-up transaction commits, in order. Billing registers
# its Stripe provisioning here (e.g. in its AppConfig.ready); keep hooks idempotent.
POST_PROVISION_HOOKS: list[Callable[[Account], Any]] = []


class _Default(enum.Enum):
    ADMIN_EMAIL = enum.auto()


# `billing_email=` default: the admin's email (self-service sign-up).
ADMIN_EMAIL = _Default.ADMIN_EMAIL


@dataclass(frozen=True)
class Provisioned:
    """Everything a sign-up created."""

    account: Account
    admin: Actor
    identity: AuthIdentity
    provider: AuthProvider
    everyone: ActorGroup
    default_site: Site
    internet_site: Site
    internet_resource: Resource


def _run_hooks(account: Account) -> None:
    # Read the list when the transaction commits, so hooks registered later still run.
    for hook in list(POST_PROVISION_HOOKS):
        try:
            hook(account)
        except Exception:  # the account is committed: a failing hook must not hide it
            logger.exception("post-provision hook %r failed for account %s", hook, account.pk)


def _input_errors(admin_name: Any, admin_email: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    try:
        clean_actor_name(admin_name)
    except ValidationFailed as exc:
        errors["admin_name"] = exc.errors.get("name", ["is invalid"])
    if messages := email_errors(admin_email):
        errors["admin_email"] = messages
    return errors


@transaction.atomic
def account_provision(
    *,
    name: str,
    slug: str | None,
    legal_name: str | None,
    admin_name: str,
    admin_email: str,
    features: Mapping[str, Any] | None = None,
    limits: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    provider_name: str = EMAIL_PROVIDER_NAME,
    billing_email: str | _Default | None = ADMIN_EMAIL,
) -> Provisioned:
    """Create a new account with its admin, ready for the admin's first email sign-in.

    `slug=None` generates one. `metadata.stripe.billing_email` is set to `billing_email`, by
    default `admin_email` (merged into the given `metadata`). The email provider is called
    `provider_name` (accounts created from a Stripe customer use "Email (OTP)",
    billing_sync_jobs.md §1.8.1). Raises ValidationFailed (fields: name, legal_name, slug,
    features.*, limits.*, admin_name, admin_email) before anything is kept.
    """
    errors = _input_errors(admin_name, admin_email)
    admin_email = admin_email.strip() if isinstance(admin_email, str) else admin_email
    if billing_email is ADMIN_EMAIL:
        billing_email = admin_email
    billing = {"stripe": {"billing_email": billing_email}}
    try:
        account = account_create(
            name=name,
            slug=slug,
            legal_name=legal_name,
            features=features,
            limits=limits,
            metadata=deep_merge(metadata or {}, billing),
        )
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        # Raising inside the atomic block rolls back the account if it was created.
        raise ValidationFailed(errors)

    everyone = group_create_everyone(account=account)
    provider = provider_create_system(
        account=account, name=provider_name, adapter=AuthProvider.Adapter.EMAIL
    )
    admin = actor_create_system(
        account=account, name=admin_name, type=Actor.Type.ACCOUNT_ADMIN_USER
    )
    identity = identity_create_system(
        actor=admin, provider=provider, provider_identifier=admin_email
    )
    # The admin "creates" the default site (its trail names them), as in the original.
    default_site = site_create(
        subject=Subject.build(actor=admin, identity=identity), name=DEFAULT_SITE_NAME
    )
    internet_site = site_create_internet(account=account)
    internet_resource = resource_create_internet(account=account, site=internet_site)

    transaction.on_commit(functools.partial(_run_hooks, account))
    return Provisioned(
        account=account,
        admin=admin,
        identity=identity,
        provider=provider,
        everyone=everyone,
        default_site=default_site,
        internet_site=internet_site,
        internet_resource=internet_resource,
    )
