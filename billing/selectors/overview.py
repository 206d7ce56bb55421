"""What the billing page shows (billing_sync_jobs.md §1.11 to §1.13)."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.auth import Subject
from accounts.limits import limit_of
from accounts.models import Account
from accounts.selectors.accounts import account_get
from billing.limits import USAGE
from billing.selectors.provisioning import billing_provisioned
from firezone.errors import NotFound

# Rows of the page's Limits table (§1.13), in the original's order: (label, `limits` key, note).
SEATS_NOTE = "Users that have signed in from a device within the last month"
LIMIT_ROWS = (
    ("Users", "users_count", ""),
    ("Seats", "monthly_active_users_count", SEATS_NOTE),
    ("Service Accounts", "service_accounts_count", ""),
    ("Admins", "account_admin_users_count", ""),
    ("Sites", "gateway_groups_count", ""),
)
_COUNTS = {key: count for _, key, count in USAGE}


@dataclass(frozen=True)
class LimitRow:
    label: str
    used: int
    allowed: int
    note: str = ""

    @property
    def exceeded(self) -> bool:
        """Strictly over the limit (§1.12): at the limit is not exceeded."""
        return self.used > self.allowed


@dataclass(frozen=True)
class BillingOverview:
    account: Account
    product_name: str
    billing_email: str
    legal_name: str
    support_type: str
    limits: list[LimitRow]


def billing_overview_get(subject: Subject) -> BillingOverview:
    """The subject's account's billing page (§1.13); NotFound unless it is provisioned."""
    account = account_get(subject)
    if not billing_provisioned(account):
        raise NotFound()
    stripe = account.stripe
    rows = [
        LimitRow(label, _COUNTS[key](account), allowed, note)
        for label, key, note in LIMIT_ROWS
        if (allowed := limit_of(account, key)) is not None
    ]
    return BillingOverview(
        account=account,
        product_name=str(stripe.get("product_name") or ""),
        billing_email=str(stripe.get("billing_email") or ""),
        legal_name=account.legal_name,
        support_type=str(stripe.get("support_type") or ""),
        limits=rows,
    )
