"""Why a Stripe event was not applied (billing_sync_jobs.md §1.7, §1.8)."""

from __future__ import annotations


class EventRefused(Exception):
    """A permanent refusal: retrying the same event cannot succeed (missing sales metadata, slug
    taken, unknown account, a plan that does not map). Rolled back, logged, not recorded, and
    answered 200 so Stripe does not retry (billing/services/events.py)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class CustomerNotProvisioned(EventRefused):
    """The Stripe customer has no `metadata.account_id`."""

    def __init__(self, customer_id: str) -> None:
        super().__init__("customer_not_provisioned", customer_id)


class AccountNotFound(EventRefused):
    """The customer's `metadata.account_id` names no account."""

    def __init__(self, account_id: str) -> None:
        super().__init__("not_found", f"account {account_id}")
