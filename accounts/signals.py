"""Signals the identity domain sends to the apps built on it, so `accounts` never imports them.

`account_disabled(sender=Account, account=…, subject=…)` is sent inside the disabling transaction;
receivers (resources: delete the account's flows) run in it, so a disable is all or nothing.

`account_updated(sender=Account, account=…, changed=frozenset[str], subject=…)` is sent inside
every account update that changed a column (`changed`: the field names, e.g. {"name"}). Receivers
that talk to the outside world defer it with `transaction.on_commit` (billing: push a new name or
slug to the Stripe customer, billing_sync_jobs.md §1.5).
"""

from __future__ import annotations

from django.dispatch import Signal

account_disabled = Signal()
account_updated = Signal()
