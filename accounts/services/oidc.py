"""OpenID Connect sign-in, domain side (domain.md §2.6, portal.md §3.8): which identity a
verified IdP answer signs in, and what the identity keeps of it.

System path (no subject): the caller has verified the ID token (`accounts.oidc`). There is no
just-in-time provisioning: an IdP user without a matching identity is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, Q, Value, When

from accounts.models import AuthIdentity, AuthProvider
from accounts.services.identities import is_email
from firezone import changes
from firezone.errors import Unauthorized


def _not_allowed(reason: str) -> Unauthorized:
    return Unauthorized("You may not authenticate to this account.", reason=reason)


@transaction.atomic
def identity_oidc_signed_in(
    *,
    provider: AuthProvider,
    provider_identifier: str,
    email: str | None,
    provider_state: Mapping[str, Any],
    email_verified: bool | None = None,
) -> AuthIdentity:
    """The active identity of `provider` for the IdP user `provider_identifier` (`sub`, or
    `oid` for Entra), updated with what the IdP said. Raises Unauthorized if none matches.

    Manual-provisioning providers (plain OIDC) also match an identity an admin pre-created
    with the user's email as identifier, if it was never used; the exact identifier wins, then
    the most recently used. The match then takes the IdP identifier, so the email placeholder
    is used at most once. An email the IdP marks unverified (`email_verified: false`) is not
    used to match.
    """
    identifier = provider_identifier.strip() if isinstance(provider_identifier, str) else ""
    if not identifier:
        raise _not_allowed("no_identifier")
    candidates = Q(provider_identifier=identifier)
    manual = provider.provisioner == AuthProvider.Provisioner.MANUAL
    if manual and email and email_verified is not False:
        candidates |= Q(last_seen_at__isnull=True, provider_identifier=email)
    identity = (
        AuthIdentity.objects.filter(
            candidates,
            provider_id=provider.pk,
            account_id=provider.account_id,
            provider__disabled_at__isnull=True,
            actor__disabled_at__isnull=True,
        )
        .annotate(
            exact=Case(
                When(provider_identifier=identifier, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("exact", F("last_seen_at").desc(nulls_last=True), "inserted_at")
        .select_for_update(of=("self",))
        .first()
    )
    if identity is None:
        raise _not_allowed("no_matching_identity")
    old = changes.row_image(identity)
    identity.provider_identifier = identifier
    if email and is_email(email):
        identity.email = email
    identity.provider_state = dict(provider_state)
    try:
        with transaction.atomic():
            identity.save(update_fields=["provider_identifier", "email", "provider_state"])
    except IntegrityError as exc:
        # Another identity (of a disabled actor) already holds this IdP identifier.
        raise _not_allowed("identifier_taken") from exc
    changes.updated(old, identity)
    return identity
