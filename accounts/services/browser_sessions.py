"""Browser-session refresh (billing_sync_jobs.md §2.14, domain.md §2.6 and job 5.2): an admin
signed in through an OIDC-family provider stays signed in while the IdP still grants a refresh,
and is signed out when it refuses.

A browser token's lifetime is the IdP's (at most 10 h at sign-in), about an hour for most IdPs.
`browser_sessions_refresh` (the periodic job, accounts.tasks) takes the browser tokens expiring
in (now + 5 s, now + 15 min) of identities of enabled OIDC-family providers, and per identity
uses the `refresh_token` kept in its `provider_state` once (several browsers of one user share
the identity's grant):

* **granted** — the identity's `provider_state` gets the new tokens (a rotated refresh token
  included; ID token and claims only when the answer carried a new, verified ID token), and
  each due browser token's `expires_at` becomes the IdP's new expiry when that is later (never
  shortened; not capped at 10 h, as in the original). An answer without an expiry extends
  nothing. Open pages notice nothing: their live socket re-checks the session at the old
  expiry and finds it extended.
* **refused** — `invalid_grant`, or an ID token that does not verify or names another user: the
  due browser tokens are deleted (`changes.delete`), which signs the browser out on its next
  request and tells every open page over `/live` (`session_revoked`). Beyond the original,
  whose job only logged failures and let the session run out.
* **anything else** (IdP down, timeouts, HTTP 5xx, `invalid_client` and other OAuth errors, an
  unusable answer) — logged; the session is kept and the next run (every minute) tries again
  until it expires.

Identities without a refresh token (the IdP issued none, e.g. plain OIDC without
`offline_access`) and other adapters (e-mail, userpass) are skipped: their sessions expire.
The HTTP call runs outside any transaction; the state is stored under the identity's row lock,
and only if no sign-in replaced the refresh token meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import oidc
from accounts.models import AuthIdentity, Token
from accounts.selectors.tokens import browser_tokens_due_for_refresh
from firezone import changes

logger = logging.getLogger(__name__)


@dataclass
class RefreshReport:
    """What one run did, by identity: refreshed (sessions extended), signed_out (refused),
    failed (kept, retried next run), skipped (nothing to refresh with)."""

    refreshed: int = 0
    signed_out: int = 0
    failed: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "refreshed": self.refreshed,
            "signed_out": self.signed_out,
            "failed": self.failed,
            "skipped": self.skipped,
        }


def browser_sessions_refresh(*, now: datetime | None = None) -> RefreshReport:
    """System job: refresh every browser session due (see the module docstring). Never raises
    for one identity's trouble: it is logged and counted as failed."""
    report = RefreshReport()
    due = browser_tokens_due_for_refresh(now=now or timezone.now())
    for identity_id, token_ids in due.items():
        try:
            outcome = identity_browser_sessions_refresh(
                identity_id=identity_id, token_ids=token_ids
            )
        except Exception:
            logger.exception("browser session refresh of identity %s failed", identity_id)
            outcome = "failed"
        setattr(report, outcome, getattr(report, outcome) + 1)
    if due:
        logger.info("browser session refresh: %s", report.as_dict())
    return report


def identity_browser_sessions_refresh(*, identity_id: Any, token_ids: Collection[Any]) -> str:
    """Refresh the IdP grant of one identity and extend (or, when refused, delete) its browser
    tokens `token_ids`. Returns "refreshed", "signed_out", "failed" or "skipped"."""
    identity = (
        AuthIdentity.objects.select_related("provider")
        .filter(pk=identity_id, actor__disabled_at__isnull=True, provider__disabled_at__isnull=True)
        .first()
    )
    if identity is None or not oidc.is_oidc(identity.provider):
        return "skipped"
    refresh_token = (identity.provider_state or {}).get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        logger.info("identity %s has no refresh token: its sessions will expire", identity.pk)
        return "skipped"
    try:
        result = oidc.refresh(
            identity.provider, refresh_token=refresh_token, identifier=identity.provider_identifier
        )
    except oidc.NotAllowed as exc:
        logger.info("IdP refused the refresh of identity %s (%s): signed out", identity.pk, exc)
        browser_tokens_sign_out(identity_id=identity.pk, token_ids=token_ids)
        return "signed_out"
    except oidc.OIDCError as exc:
        logger.warning("refresh of identity %s failed (%s): retried later", identity.pk, exc)
        return "failed"
    browser_tokens_extend(
        identity_id=identity.pk, token_ids=token_ids, used=refresh_token, result=result
    )
    return "refreshed"


@transaction.atomic
def browser_tokens_extend(
    *, identity_id: Any, token_ids: Collection[Any], used: str, result: oidc.RefreshResult
) -> int:
    """Store a granted refresh: the identity's new `provider_state` (unless a sign-in replaced
    the refresh token `used` meanwhile) and the later expiry on its browser tokens `token_ids`.
    Returns how many tokens were extended."""
    identity = AuthIdentity.objects.select_for_update().filter(pk=identity_id).first()
    if identity is None:
        return 0
    state = identity.provider_state or {}
    if state.get("refresh_token") == used:
        old = changes.row_image(identity)
        identity.provider_state = result.provider_state(state)
        identity.save(update_fields=["provider_state"])
        changes.updated(old, identity)
    if result.expires_at is None:
        return 0
    tokens = Token.objects.select_for_update().filter(
        pk__in=list(token_ids),
        identity_id=identity_id,
        type=Token.Type.BROWSER,
        expires_at__gt=timezone.now(),
        expires_at__lt=result.expires_at,
    )
    extended = 0
    for token in tokens:
        old = changes.row_image(token)
        token.expires_at = result.expires_at
        token.save(update_fields=["expires_at"])
        changes.updated(old, token)
        extended += 1
    return extended


@transaction.atomic
def browser_tokens_sign_out(*, identity_id: Any, token_ids: Collection[Any]) -> int:
    """The IdP refused: delete the identity's browser tokens `token_ids`, closing their open
    pages' live sockets. Returns how many were deleted."""
    recorded = changes.delete(
        Token.objects.filter(
            pk__in=list(token_ids), identity_id=identity_id, type=Token.Type.BROWSER
        )
    )
    return sum(1 for c in recorded if c.table == "tokens")
