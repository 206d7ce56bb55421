"""The account limits check (billing_sync_jobs.md §1.13): the `warning` banner of accounts over
their plan limits. Run every 5 minutes by `billing.tasks.check_account_limits`."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from accounts.models import Account
from accounts.services.accounts import account_update_system
from billing.limits import exceeded_limits
from billing.selectors.provisioning import billing_provisioned
from billing.stripe import billing_enabled

WARNING_PREFIX = "You have exceeded the following limits: "


def limits_warning(account: Account) -> str | None:
    """The warning the account should carry: None within its limits."""
    exceeded = exceeded_limits(account)
    return WARNING_PREFIX + ", ".join(exceeded) if exceeded else None


def account_limits_check(account: Account) -> bool:
    """Set or clear the account's warning; True when the account was written.

    The original rewrote the three fields on every run; we write only when the warning text
    changes (or the vestigial delivery fields are out of step with it), so a steady account
    records no change-log row every 5 minutes. `warning_last_sent_at` is therefore when the
    current warning was set."""
    warning = limits_warning(account)
    wanted: dict[str, Any]
    if warning is None:
        wanted = {"warning": None, "warning_delivery_attempts": 0, "warning_last_sent_at": None}
        if (account.warning, account.warning_delivery_attempts, account.warning_last_sent_at) == (
            None,
            0,
            None,
        ):
            return False
    else:
        if account.warning == warning and account.warning_last_sent_at is not None:
            return False
        wanted = {
            "warning": warning,
            "warning_delivery_attempts": 0,
            "warning_last_sent_at": timezone.now(),
        }
    account_update_system(account=account, **wanted)
    return True


def accounts_limits_check() -> int:
    """Every active (not disabled), provisioned account; nothing with billing off. Returns how
    many accounts were written."""
    if not billing_enabled():
        return 0
    accounts = Account.objects.filter(
        disabled_at__isnull=True, metadata__stripe__customer_id__isnull=False
    ).order_by("pk")
    return sum(
        account_limits_check(account)
        for account in accounts.iterator()
        if billing_provisioned(account)  # a JSON null or empty customer id is not a customer
    )
