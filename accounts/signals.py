"""Signals the identity domain sends to the apps built on it, so `accounts` never imports them.

`account_disabled(sender=Account, account=…, subject=…)` is sent inside the disabling transaction;
receivers (resources: delete the account's flows) run in it, so a disable is all or nothing.
"""

from __future__ import annotations

from django.dispatch import Signal

account_disabled = Signal()
