"""One directory sync run of one provider (billing_sync_jobs.md §2.3 steps 1, 4 and 5, §2.7).

`provider_sync_run(provider=…)`:

1. the account's `idp_sync` feature is off → counted failure "IdP sync is not enabled in your
   subscription plan", no IdP call and no e-mail;
2. gather: the provider's directory (`directory_sync.adapters.DIRECTORIES[adapter]`) is read to
   the end — identities, groups, memberships;
3. apply: `directory_sync.services.sync.provider_sync_apply` writes them (§2.4-2.6);
4. the outcome lands on the provider (§2.7):

   | outcome | `last_synced_at` | `last_syncs_failed` | `last_sync_error` | other |
   |---|---|---|---|---|
   | success | now | 0 | kept | `sync_disabled_at`, `sync_error_emailed_at` null |
   | `SyncUnauthorized` | null | +1 | IdP message | `sync_disabled_at` now; e-mail at once |
   | `SyncCountedFailure`, feature off | null | +1 | message | e-mail from 10 in a row, 24 h apart |
   | `SyncLogOnly`, apply error (DB, circuit breaker), adapter crash | kept | kept | kept | logged |

   and, whatever the outcome, `last_sync_attempt_at = now`: the back-off of §2.2 counts from it
   (directory_sync.selectors.runs), which fixes quirk §7.5 (a counted failure nulls
   `last_synced_at`, so the original retried failing providers on every tick).

Failures are logged at error level from 100 counted failures in a row, warning from 3, info
below. The sync-error e-mail (§4.2) goes to every address of every enabled admin of the
account; it is sent after the failure is recorded, and `sync_error_emailed_at` is set only once
it went out (a mail outage retries it with the next failure).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core import mail
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.features import feature_enabled
from accounts.models import AuthProvider
from accounts.selectors.notifications import admin_email_addresses
from directory_sync.adapters import DIRECTORIES
from directory_sync.directory import SyncCountedFailure, SyncLogOnly, SyncUnauthorized
from directory_sync.services.sync import provider_sync_apply
from firezone import origin
from firezone.mail import templated_email

logger = logging.getLogger(__name__)

FEATURE_OFF = "IdP sync is not enabled in your subscription plan"
SYNC_ERROR_SUBJECT = "Firezone Identity Provider Sync Error"
EMAIL_THRESHOLD = 10
EMAIL_GUARD = timedelta(hours=24)


@dataclass(frozen=True)
class SyncRun:
    """What a run did: `outcome` is "synced", "unauthorized", "failed" (counted) or "log_only";
    `message` the error (user message, or log text); `result` what the apply returned."""

    outcome: str
    message: str | None = None
    result: Any = None
    emailed: bool = False


def failure_log_level(failures: int) -> int:
    """§2.7: error from 100 counted failures in a row, warning from 3, info below."""
    if failures >= 100:
        return logging.ERROR
    if failures >= 3:
        return logging.WARNING
    return logging.INFO


def provider_sync_run(*, provider: AuthProvider) -> SyncRun:
    """Sync one provider now and record the outcome on it (the caller holds its lock). Rows it
    logs name the provider as their writer (`firezone.origin.identity_provider`)."""
    with origin.origin(origin.identity_provider(provider)):
        return _run(provider)


def _run(provider: AuthProvider) -> SyncRun:
    started = time.monotonic()
    if not feature_enabled(provider.account, "idp_sync"):
        return _counted_failure(provider, FEATURE_OFF, unauthorized=False, evaluate_email=False)
    try:
        factory = DIRECTORIES.get(provider.adapter)
        if factory is None:
            raise SyncLogOnly(f"no directory adapter is registered for {provider.adapter!r}")
        directory = factory(provider)
        identities = list(directory.identities())
        groups = list(directory.groups())
        memberships = list(directory.memberships())
    except SyncUnauthorized as error:
        return _counted_failure(provider, error.message, unauthorized=True)
    except SyncCountedFailure as error:
        return _counted_failure(provider, error.message, unauthorized=False)
    except SyncLogOnly as error:
        return _log_only(provider, error.message)
    except Exception as error:  # an adapter bug: logged with its traceback, retried later
        logger.exception("provider %s: directory sync crashed while fetching", provider.pk)
        return _log_only(provider, f"crashed: {error!r}", already_logged=True)
    fetched = time.monotonic()
    try:
        result = provider_sync_apply(
            provider=provider, identities=identities, groups=groups, memberships=memberships
        )
    except SyncCountedFailure as error:
        # The deletion circuit breakers (`SyncRefused`): shown and counted, unlike the original's
        # log-only "Repo error" (issue 16: "nothing changes, the error is shown").
        return _counted_failure(provider, error.message, unauthorized=False)
    except Exception as error:  # §2.7 row 4: database errors
        logger.exception("provider %s: directory sync failed while writing", provider.pk)
        return _log_only(provider, f"Repo error: {error}", already_logged=True)
    done = time.monotonic()
    _succeeded(provider)
    logger.info(
        "provider %s: directory synced (%d identities, %d groups, %d memberships; "
        "fetch %.2fs, db %.2fs, total %.2fs): %s",
        provider.pk,
        len(identities),
        len(groups),
        len(memberships),
        fetched - started,
        done - fetched,
        done - started,
        result,
    )
    return SyncRun("synced", result=result)


# --- outcomes ------------------------------------------------------------------------------------


@transaction.atomic
def _succeeded(provider: AuthProvider) -> None:
    now = timezone.now()
    fields = {
        "last_synced_at": now,
        "last_sync_attempt_at": now,
        "last_syncs_failed": 0,
        "sync_disabled_at": None,
        "sync_error_emailed_at": None,
    }
    AuthProvider.objects.filter(pk=provider.pk).update(**fields, updated_at=now)
    for name, value in fields.items():
        setattr(provider, name, value)


@transaction.atomic
def _record_counted_failure(
    provider: AuthProvider, message: str, *, unauthorized: bool, evaluate_email: bool
) -> bool:
    """Count the failure; True when the admins should get the sync-error e-mail now."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "last_synced_at": None,
        "last_sync_attempt_at": now,
        "last_sync_error": message,
        "last_syncs_failed": Coalesce(F("last_syncs_failed"), Value(0)) + 1,
    }
    if unauthorized:
        fields["sync_disabled_at"] = now
    AuthProvider.objects.filter(pk=provider.pk).update(**fields, updated_at=now)
    provider.refresh_from_db()
    if unauthorized:
        return True
    return evaluate_email and _email_due(provider, now)


def _email_due(provider: AuthProvider, now: datetime) -> bool:
    emailed_at = provider.sync_error_emailed_at
    return (provider.last_syncs_failed or 0) >= EMAIL_THRESHOLD and (
        emailed_at is None or emailed_at <= now - EMAIL_GUARD
    )


def _counted_failure(
    provider: AuthProvider, message: str, *, unauthorized: bool, evaluate_email: bool = True
) -> SyncRun:
    email = _record_counted_failure(
        provider, message, unauthorized=unauthorized, evaluate_email=evaluate_email
    )
    failures = provider.last_syncs_failed or 0
    logger.log(
        failure_log_level(failures),
        "provider %s: directory sync failed (%d in a row)%s: %s",
        provider.pk,
        failures,
        "; sync disabled until the provider is reconnected" if unauthorized else "",
        message,
    )
    emailed = email and _send_sync_error_email(provider)
    return SyncRun("unauthorized" if unauthorized else "failed", message, emailed=emailed)


def _log_only(provider: AuthProvider, message: str, *, already_logged: bool = False) -> SyncRun:
    now = timezone.now()
    AuthProvider.objects.filter(pk=provider.pk).update(last_sync_attempt_at=now, updated_at=now)
    provider.last_sync_attempt_at = now
    if not already_logged:
        logger.log(
            failure_log_level(provider.last_syncs_failed or 0),
            "provider %s: directory sync failed: %s",
            provider.pk,
            message,
        )
    return SyncRun("log_only", message)


# --- the sync-error e-mail (§4.2) ---------------------------------------------------------------


def sync_error_recipients(provider: AuthProvider) -> list[str]:
    """The account's enabled admins' addresses (the same list every account notification uses)."""
    return admin_email_addresses(provider.account_id)


def sync_error_email_build(*, provider: AuthProvider, to: list[str]) -> mail.EmailMessage:
    data = {"provider": provider, "account": provider.account}
    message = templated_email(subject=SYNC_ERROR_SUBJECT, template="sync_error", data=data, to=to)
    return message


def _send_sync_error_email(provider: AuthProvider) -> bool:
    """One message per admin address; `sync_error_emailed_at = now` once they went out."""
    recipients = sync_error_recipients(provider)
    if not recipients:
        logger.warning("provider %s: no admin address for the sync-error e-mail", provider.pk)
        return False
    try:
        connection = mail.get_connection()
        connection.send_messages(
            [sync_error_email_build(provider=provider, to=[to]) for to in recipients]
        )
    except Exception:
        logger.exception("provider %s: the sync-error e-mail could not be sent", provider.pk)
        return False
    now = timezone.now()
    AuthProvider.objects.filter(pk=provider.pk).update(sync_error_emailed_at=now)
    provider.sync_error_emailed_at = now
    return True
