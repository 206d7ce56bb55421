"""The outdated-gateway notification (billing_sync_jobs.md §4.4, domain.md §5.12): every 5
minutes, on Sundays (UTC) in production (`OUTDATED_GATEWAY_EMAIL_SUNDAYS_ONLY`), the admins of
each account get "Firezone Gateway Upgrade Available" when some of its online gateways in
account-managed sites (the Internet site is excluded) run a version older than the latest one
(`firezone.component_versions`).

Who: enabled accounts whose `config.notifications.outdated_gateway.enabled` is not false (the
Settings → Account → Notifications switch) and whose `last_notified` is empty or older than 24 h.
"Online" is the gateway's presence on the account topic (`gateways.presence`).

What was sent is recorded in the same setting: `notified` lists the
`{gateway_id, version, latest_version}` the admins were told about. A run mails only when some
outdated gateway is not in that list yet, so running twice sends one e-mail, and a new latest
version (or a gateway moving to another old version) makes the next one. The e-mail lists every
outdated online gateway. The record is written only after the messages went out: a mail outage
means a retry on the next run, never a lost e-mail (at worst a repeated one after a crash between
the two).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import mail
from django.utils import timezone

from accounts.models import Account
from accounts.selectors.notifications import (
    admin_email_addresses,
    outdated_gateway_last_notified,
    outdated_gateway_setting,
)
from accounts.services.accounts import account_update_system
from accounts.validation import is_uuid
from firezone.mail import templated_email
from firezone.versions import version_key
from gateways import presence
from gateways.models import Gateway, Site
from gateways.selectors.gateways import gateway_latest_version, gateway_outdated

logger = logging.getLogger(__name__)

SUBJECT = "Firezone Gateway Upgrade Available"
CHANGELOG_URL = "https://www.firezone.dev/changelog?tab=gateway"
UPGRADE_DOCS_URL = "https://www.firezone.dev/kb/administer/upgrading"
GUARD = timedelta(hours=24)
SUNDAY = 6
# Presence topics read per Redis call.
PRESENCE_CHUNK = 500


@dataclass
class OutdatedGatewaysRun:
    skipped: str | None = None
    latest_version: str | None = None
    # ids of the accounts whose admins were mailed, and how many messages went out
    notified_accounts: list[str] = field(default_factory=list)
    messages: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.skipped,
            "latest_version": self.latest_version,
            "notified_accounts": self.notified_accounts,
            "messages": self.messages,
        }


def _due_accounts(now: datetime) -> list[Account]:
    candidates = (
        Account.objects.filter(disabled_at__isnull=True)
        .only("id", "name", "slug", "config", "inserted_at")
        .exclude(config__notifications__outdated_gateway__enabled=False)
        .order_by("inserted_at", "id")
    )
    due = []
    for account in candidates:
        last = outdated_gateway_last_notified(account)
        if last is None or last < now - GUARD:
            due.append(account)
    return due


def _online_gateway_ids(accounts: list[Account]) -> dict[Any, set[str]]:
    """Per account id: the ids of its gateways present on the account topic."""
    online: dict[Any, set[str]] = {}
    for start in range(0, len(accounts), PRESENCE_CHUNK):
        chunk = accounts[start : start + PRESENCE_CHUNK]
        listed = presence.list_presences_many_sync(
            [presence.account_gateways_topic(a.pk) for a in chunk]
        )
        for account in chunk:
            keys = listed.get(presence.account_gateways_topic(account.pk), {})
            online[account.pk] = {key for key in keys if is_uuid(key)}
    return online


def outdated_gateways_of(account: Account, online: set[str], latest: str) -> list[Gateway]:
    """The account's online gateways in account-managed sites older than `latest`, by name."""
    if not online:
        return []
    gateways = Gateway.objects.filter(
        account=account, pk__in=online, group__managed_by=Site.ManagedBy.ACCOUNT
    ).order_by("name", "id")
    return [g for g in gateways if gateway_outdated(g.last_seen_version, latest)]


def _entry(gateway: Gateway, latest: str) -> dict[str, str]:
    return {
        "gateway_id": str(gateway.pk),
        "version": gateway.last_seen_version,
        "latest_version": latest,
    }


def outdated_gateways_email_build(
    *, account: Account, gateways: list[Gateway], latest: str, to: str
) -> mail.EmailMessage:
    base = settings.EXTERNAL_URL.rstrip("/")
    data = {
        "account": account,
        "gateways": gateways,
        "latest_version": latest,
        "sites_url": f"{base}/{account.slug or account.pk}/sites",
        "changelog_url": CHANGELOG_URL,
        "upgrade_docs_url": UPGRADE_DOCS_URL,
    }
    message = templated_email(subject=SUBJECT, template="outdated_gateways", data=data, to=[to])
    return message


def _notify_account(account: Account, gateways: list[Gateway], latest: str, now: datetime) -> int:
    """Mail the admins about `gateways` unless they were all told already; the number of
    messages sent (0: nothing new, no admin address, or the mail failed)."""
    entries = [_entry(g, latest) for g in gateways]
    notified = outdated_gateway_setting(account).get("notified")
    notified = [e for e in notified if isinstance(e, dict)] if isinstance(notified, list) else []
    if all(entry in notified for entry in entries):
        return 0
    recipients = admin_email_addresses(account.pk)
    if not recipients:
        logger.warning("account %s: no admin address for the outdated-gateway e-mail", account.pk)
        return 0
    try:
        mail.get_connection().send_messages(
            [
                outdated_gateways_email_build(
                    account=account, gateways=gateways, latest=latest, to=to
                )
                for to in recipients
            ]
        )
    except Exception:
        logger.exception("account %s: the outdated-gateway e-mail could not be sent", account.pk)
        return 0
    # Keep what was told about gateways that still exist (offline now, or already upgraded),
    # for the same latest version, so they do not make a new e-mail when they come back.
    existing = {
        str(pk) for pk in Gateway.objects.filter(account=account).values_list("pk", flat=True)
    }
    kept = [
        e
        for e in notified
        if e.get("latest_version") == latest
        and e.get("gateway_id") in existing
        and e not in entries
    ]
    account_update_system(
        account=account,
        config={
            "notifications": {
                "outdated_gateway": {"last_notified": now.isoformat(), "notified": kept + entries}
            }
        },
    )
    return len(recipients)


def outdated_gateways_notify(*, now: datetime | None = None) -> OutdatedGatewaysRun:
    """One run of the job over every due account."""
    now = now or timezone.now()
    if settings.OUTDATED_GATEWAY_EMAIL_SUNDAYS_ONLY and now.astimezone(UTC).weekday() != SUNDAY:
        return OutdatedGatewaysRun(skipped="not Sunday (UTC)")
    latest = gateway_latest_version()
    if version_key(latest) is None:
        logger.warning("outdated gateways: the latest gateway version %r is not a version", latest)
        return OutdatedGatewaysRun(skipped="no latest version", latest_version=latest)
    run = OutdatedGatewaysRun(latest_version=latest)
    accounts = _due_accounts(now)
    online = _online_gateway_ids(accounts)
    for account in accounts:
        gateways = outdated_gateways_of(account, online.get(account.pk, set()), latest)
        if not gateways:
            continue
        sent = _notify_account(account, gateways, latest, now)
        if sent:
            run.notified_accounts.append(str(account.pk))
            run.messages += sent
    return run
