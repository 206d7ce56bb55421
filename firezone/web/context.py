"""Template context for every portal page: on admin pages, what the app layout shows (user menu,
sidebar, banners; portal.md §1.2)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.auth import Subject
from accounts.features import feature_enabled
from accounts.models import Account
from billing.selectors.provisioning import billing_provisioned, provisioning_pending
from firezone.web.pages import account_url
from firezone.web.session import account_path


@dataclass
class NavItem:
    label: str
    href: str = ""
    active: bool = False
    children: list[NavItem] = field(default_factory=list)


@dataclass
class Banner:
    kind: str  # warning | error | info
    html: SafeString


def trial_ends_at(account: Account) -> datetime | None:
    """When the account's trial ends (Stripe's `trial_ends_at`), None without a readable one."""
    raw = account.stripe.get("trial_ends_at")
    if not raw:
        return None
    try:
        ends = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    return ends.replace(tzinfo=UTC) if timezone.is_naive(ends) else ends


def trial_days_left(account: Account, now: datetime | None = None) -> int | None:
    """Whole days left of the trial, `floor((trial_ends_at - now) / 1 day)`
    (billing_sync_jobs.md §1.10): 1 with 47 hours left, 0 or less once it needs renewing.
    None without a trial."""
    ends = trial_ends_at(account)
    now = timezone.now() if now is None else now
    return None if ends is None else math.floor((ends - now).total_seconds() / 86400)


MSG_BILLING_PENDING = (
    "Billing for this account is being set up. If this message does not go away within a few "
    "hours, please contact support@firezone.dev."
)


def account_banners(account: Account, subject: Subject | None) -> list[Banner]:
    """Warning, disabled and trial banners, in that order (§1.2)."""
    banners: list[Banner] = []
    if account.warning:
        if billing_provisioned(account):
            html = format_html(
                '{}. Please check your <a href="{}">billing information</a> to continue using '
                "Firezone.",
                account.warning,
                account_url(account, "settings_billing"),
            )
        else:
            html = format_html("{}.", account.warning)
        banners.append(Banner("warning", html))
    if account.is_disabled:
        body = (
            "\n\n---\n"
            f"Account Name: {account.name}\n"
            f"Account Slug: {account.slug}\n"
            f"Account ID: {account.pk}\n"
            f"Actor ID: {subject.actor_id if subject else ''}"
        )
        mailto = "mailto:support@firezone.dev?" + urlencode(
            {"subject": f"Enable account: {account.name}", "body": body}, quote_via=quote
        )
        banners.append(
            Banner(
                "error",
                format_html(
                    'This account has been disabled. Please <a href="{}">contact support</a> to '
                    "re-activate it.",
                    mailto,
                ),
            )
        )
    days = trial_days_left(account)
    if days is not None and 0 < days < 5:
        unit = "day" if days == 1 else "days"
        banners.append(
            Banner(
                "info",
                format_html(
                    "Your Enterprise pilot period will expire in {} {}. Please contact your sales "
                    "representative to extend it.",
                    days,
                    unit,
                ),
            )
        )
    elif days is not None and days <= 0:
        banners.append(
            Banner(
                "error",
                SafeString(
                    "Your Enterprise pilot period needs to be renewed, please contact your sales "
                    "representative."
                ),
            )
        )
    if provisioning_pending(account):
        # Sign-up could not reach Stripe; billing.tasks.provision_account is retrying.
        banners.append(Banner("info", format_html("{}", MSG_BILLING_PENDING)))
    return banners


def sidebar(account: Account, path: str) -> list[NavItem]:
    """The app layout's sidebar; the item whose path prefixes the current one is active."""

    def item(label: str, name: str, **kwargs: Any) -> NavItem:
        href = account_url(account, name, **kwargs)
        return NavItem(label, href, path == href or path.startswith(href + "/"))

    items = [
        item("Sites", "sites"),
        item("Actors", "actors"),
        item("Groups", "groups"),
        item("Clients", "clients"),
        item("Resources", "resources"),
        item("Policies", "policies"),
    ]
    if feature_enabled(account, "self_hosted_relays"):
        items.append(item("Relays", "relay_groups"))
    settings_items = [item("Account", "settings_account")]
    if billing_provisioned(account):
        settings_items.append(item("Billing", "settings_billing"))
    settings_items += [
        item("Identity Providers", "identity_providers"),
        item("DNS", "settings_dns"),
        item("API Clients", "api_clients"),
        item("Audit Log", "settings_audit_log"),
    ]
    items.append(
        NavItem("Settings", active=any(i.active for i in settings_items), children=settings_items)
    )
    return items


class PortalContext:
    """Lazily computed: pages without a signed-in subject pay nothing."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    @cached_property
    def subject(self) -> Subject | None:
        return getattr(self.request, "subject", None)

    @cached_property
    def account(self) -> Account | None:
        subject = self.subject
        return subject.account if subject else getattr(self.request, "account", None)

    @cached_property
    def account_path(self) -> str:
        return account_path(self.account) if self.account else ""

    @cached_property
    def email(self) -> str:
        identity = self.subject.identity if self.subject else None
        if identity is None:
            return ""
        return (identity.email or identity.provider_identifier or "").strip().lower()

    @cached_property
    def gravatar_url(self) -> str:
        """Empty unless GRAVATAR_ENABLED: by default no admin page asks a third party for
        anything (the avatar shows the initials)."""
        if not settings.GRAVATAR_ENABLED:
            return ""
        digest = hashlib.md5(self.email.encode(), usedforsecurity=False).hexdigest()
        return f"https://www.gravatar.com/avatar/{digest}?s=80&d=blank"

    @cached_property
    def initials(self) -> str:
        name = self.subject.actor.name if self.subject else ""
        parts = [p for p in name.split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"

    @cached_property
    def billing_provisioned(self) -> bool:
        """The account has a billing page (billing on and a Stripe customer)."""
        return billing_provisioned(self.account) if self.account else False

    @cached_property
    def nav(self) -> list[NavItem]:
        return sidebar(self.account, self.request.path) if self.account else []

    @cached_property
    def banners(self) -> list[Banner]:
        return account_banners(self.account, self.subject) if self.account else []


def portal(request: HttpRequest) -> dict[str, Any]:
    return {"portal": PortalContext(request)}
