"""Device sessions of an account as a whole (billing_sync_jobs.md §1.8.4, issue 15).

A disabled account (a paused or deleted subscription) keeps no connected clients or gateways:
their sockets are closed once the disable commits, and `gateways.connect` refuses them with 503
"The account is disabled" until the account is enabled again; connlib retries a 5xx with
back-off (a 4xx would sign clients out and stop gateways), so the devices come back by
themselves once the account is enabled (gateways give up after 15 minutes: their service
manager restarts them). Relays are not the account's devices and stay.
"""

from __future__ import annotations

from typing import Any

from accounts.auth import Subject
from accounts.models import Account, Token
from firezone import changes

DEVICE_TOKEN_TYPES = (Token.Type.CLIENT, Token.Type.GATEWAY_GROUP)


def device_sessions_close_for_disabled_account(
    *, account: Account, subject: Subject | None, **_signal: Any
) -> None:
    """`accounts.signals.account_disabled` receiver (inside the disabling transaction): after
    the commit, every socket authenticated with one of the account's client or site tokens is
    closed (`session.disconnect`, as for a deleted token)."""
    tokens = Token.objects.filter(account=account, type__in=DEVICE_TOKEN_TYPES)
    for token_id in tokens.values_list("pk", flat=True).iterator():
        changes.disconnect_session(token_id)
