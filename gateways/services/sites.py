"""Sites (gateway groups): create, rename, delete, the Internet site, gateway tokens (§2.10)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from accounts.auth import SYSTEM_TRAIL, P, Subject, ensure_permissions
from accounts.models import Account, Token
from accounts.services.tokens import IssuedToken, token_create
from firezone import changes
from firezone.errors import LimitReached, Refused
from firezone.lookup import get_or_not_found
from firezone.names import adjective_noun
from gateways.limits import can_create_sites
from gateways.models import INTERNET_SITE_NAME, Site
from gateways.services._common import MSG_TAKEN, clean_name, rename, save_named

SITE_NAME_MAX_LENGTH = 64
_SITE_CONSTRAINTS = {"gateway_groups_account_id_name_managed_by_index": ("name", MSG_TAKEN)}


@transaction.atomic
def site_create(*, subject: Subject, name: str | None = None) -> Site:
    """Create a user site; the name defaults to a random "adjective-noun" (plan limit applies)."""
    ensure_permissions(subject, P.GATEWAY_MANAGE)
    name = adjective_noun() if name is None else clean_name(name, maximum=SITE_NAME_MAX_LENGTH)
    # Lock the account so concurrent creations cannot both pass the limit check.
    account = Account.objects.select_for_update().get(pk=subject.account_id)
    if not can_create_sites(account):
        raise LimitReached(
            "You have reached the maximum number of sites allowed by your subscription plan.",
            code="gateway_groups_limit_reached",
            # The original answers 500 here (portal.md §5.2 row 20); its sibling reasons' style.
            reason="Sites Limit Reached",
        )
    site = Site(account=account, name=name, managed_by=Site.ManagedBy.ACCOUNT, **subject.trail())
    save_named(site, create=True, constraints=_SITE_CONSTRAINTS)
    changes.inserted(site, subject=subject)
    return site


def _load_user_site(subject: Subject, site: Site | Any) -> Site:
    ensure_permissions(subject, P.GATEWAY_MANAGE)
    found = get_or_not_found(Site, site, for_update=True, account_id=subject.account_id)
    if found.managed_by != Site.ManagedBy.ACCOUNT:
        raise Refused("The Internet site is managed by the system.", code="managed_by_system")
    return found


@transaction.atomic
def site_update(*, subject: Subject, site: Site | Any, name: str) -> Site:
    """Rename a user site (the Internet site cannot be changed)."""
    site = _load_user_site(subject, site)
    rename(site, name, subject=subject, maximum=SITE_NAME_MAX_LENGTH, constraints=_SITE_CONSTRAINTS)
    return site


@transaction.atomic
def site_delete(*, subject: Subject, site: Site | Any) -> Site:
    """Hard-delete a user site with its gateways, tokens (their sockets are closed), resource
    connections and the flows of all of those."""
    site = _load_user_site(subject, site)
    changes.delete(site, subject=subject)
    return site


@transaction.atomic
def site_create_internet(*, account: Account) -> Site:
    """System path (sign-up, seeds): the account's Internet site, created once."""
    lookup = {"account_id": account.pk, "name": INTERNET_SITE_NAME}
    lookup["managed_by"] = Site.ManagedBy.SYSTEM
    if (existing := Site.objects.filter(**lookup).first()) is not None:
        return existing
    site = Site(account=account, name=INTERNET_SITE_NAME, managed_by=Site.ManagedBy.SYSTEM)
    site.created_by = SYSTEM_TRAIL["created_by"]
    site.created_by_subject = dict(SYSTEM_TRAIL["created_by_subject"])
    try:
        with transaction.atomic():
            site.save(force_insert=True)
    except IntegrityError:  # created concurrently
        return Site.objects.get(**lookup)
    changes.inserted(site)
    return site


@transaction.atomic
def site_token_create(*, subject: Subject, site: Site | Any) -> IssuedToken:
    """Issue a never-expiring token for the gateways of a site (shown once)."""
    ensure_permissions(subject, P.GATEWAY_MANAGE)
    site = get_or_not_found(Site, site, for_update=True, account_id=subject.account_id)
    return token_create(
        type=Token.Type.GATEWAY_GROUP,
        account=subject.account,
        gateway_group=site,
        expires_at=None,
        context=subject.context,
        subject=subject,
    )


@transaction.atomic
def site_tokens_delete_all(*, subject: Subject, site: Site | Any) -> int:
    """ "Revoke All": hard-delete every gateway token of a site (the Internet site too), which
    closes the sockets of the gateways that authenticated with them. Returns how many."""
    ensure_permissions(subject, P.GATEWAY_MANAGE)
    site = get_or_not_found(Site, site, account_id=subject.account_id)
    recorded = changes.delete(
        Token.objects.filter(
            account_id=subject.account_id, type=Token.Type.GATEWAY_GROUP, gateway_group=site
        ),
        subject=subject,
    )
    return sum(1 for change in recorded if change.table == "tokens")
