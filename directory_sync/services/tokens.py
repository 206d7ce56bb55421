"""Keep the directory-sync providers' OAuth access tokens fresh (billing_sync_jobs.md §2.13).

Google Workspace (without a service-account key), Microsoft Entra and Okta sync with the token of
the admin who connected the provider, stored in `adapter_state`. Before it expires, the refresh
token buys a new one at the IdP's token endpoint (from its discovery document, through
`accounts.oidc.refresh`, the one refresh of browser sessions too, which verifies the refreshed
ID token):

* success → `access_token`, `expires_at`, `claims` (and `id_token`) are merged into
  `adapter_state`; the stored `refresh_token` is kept unless the IdP rotated it (the original
  never stored a rotated one, which then stopped working);
* the IdP refuses the refresh token (`invalid_grant`) or its ID token is invalid →
  `refresh_token` is removed: the provider is no longer refreshed, its sync soon gets a 401 and
  is disabled until the admin reconnects (§2.7), which the provider page shows;
* anything else (5xx, transport, a malformed answer, other OAuth errors such as `invalid_client`:
  a configuration problem the refresh token is not to blame for) → retried up to 3 times 100 ms
  apart, then logged; the state is unchanged and the next run tries again.

The network calls run outside any transaction; the write re-reads the provider under a row lock
and is skipped when its refresh token changed meanwhile (the admin reconnected).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import transaction

from accounts import oidc
from accounts.models import AuthProvider
from accounts.providers import IDENTIFIER_CLAIMS
from directory_sync.selectors.tokens import providers_due_token_refresh
from firezone import changes

logger = logging.getLogger(__name__)

# One attempt and up to 3 retries, 100 ms apart, on errors that may pass.
ATTEMPTS = 4
RETRY_DELAY_SECONDS = 0.1


class RefreshOutcome(StrEnum):
    REFRESHED = "refreshed"
    # The refresh token was refused and removed.
    REVOKED = "revoked"
    # The IdP could not be reached or answered badly: unchanged, tried again next run.
    FAILED = "failed"
    # Nothing to do (no refresh token, or it changed while we were refreshing).
    SKIPPED = "skipped"


def _refresh_token(state: Any) -> str | None:
    token = state.get("refresh_token") if isinstance(state, dict) else None
    return token if isinstance(token, str) and token else None


@transaction.atomic
def _state_store(
    *, provider: AuthProvider, used_refresh_token: str, result: oidc.RefreshResult | None
) -> bool:
    """Write the refreshed state (`result`) or drop the refresh token (`result` None), unless
    the stored refresh token is no longer the one we used."""
    locked = AuthProvider.objects.select_for_update().filter(pk=provider.pk).first()
    if locked is None or _refresh_token(locked.adapter_state) != used_refresh_token:
        return False
    old = changes.row_image(locked)
    state = dict(locked.adapter_state)
    if result is None:
        state.pop("refresh_token", None)
    else:
        state = result.provider_state(state)
    locked.adapter_state = state
    locked.save(update_fields=["adapter_state", "updated_at"])
    changes.updated(old, locked)
    provider.adapter_state = state
    return True


def provider_access_token_refresh(*, provider: AuthProvider) -> RefreshOutcome:
    """Refresh one provider's access token (§2.13); never raises for IdP trouble."""
    state = provider.adapter_state or {}
    refresh_token = _refresh_token(state)
    if refresh_token is None:
        return RefreshOutcome.SKIPPED
    raw_claims = state.get("claims")
    claims: dict[str, Any] = raw_claims if isinstance(raw_claims, dict) else {}
    subject = claims.get(IDENTIFIER_CLAIMS.get(provider.adapter, "sub"))
    for attempt in range(1, ATTEMPTS + 1):
        try:
            result = oidc.refresh(
                provider,
                refresh_token=refresh_token,
                identifier=subject if isinstance(subject, str) else None,
            )
        except oidc.NotAllowed as exc:
            logger.warning(
                "provider %s: refresh token refused (%s); it is dropped", provider.pk, exc.reason
            )
            dropped = _state_store(provider=provider, used_refresh_token=refresh_token, result=None)
            return RefreshOutcome.REVOKED if dropped else RefreshOutcome.SKIPPED
        except oidc.OIDCError as exc:
            if attempt == ATTEMPTS:
                logger.warning(
                    "provider %s: access token refresh failed (%s)", provider.pk, exc.reason
                )
                return RefreshOutcome.FAILED
            time.sleep(RETRY_DELAY_SECONDS)
            continue
        stored = _state_store(provider=provider, used_refresh_token=refresh_token, result=result)
        return RefreshOutcome.REFRESHED if stored else RefreshOutcome.SKIPPED
    return RefreshOutcome.FAILED  # pragma: no cover - the loop always returns


def provider_access_tokens_refresh_due(*, now: datetime | None = None) -> dict[str, int]:
    """Refresh, one after the other, every provider whose token is due (§2.13 selection);
    returns how many had each outcome."""
    outcomes: Counter[str] = Counter()
    for provider in providers_due_token_refresh(now=now):
        outcomes[provider_access_token_refresh(provider=provider)] += 1
    return dict(outcomes)
