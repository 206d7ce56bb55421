"""`manage.py delete_disabled_account <account_id>` (billing_sync_jobs.md §1.15): hard-delete a
disabled account and everything in it. Termination procedure: cancel the subscription in Stripe
"immediately" → the webhook disables the account → run this."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import CommandError

from billing.services.ops import account_delete_disabled
from firezone.commands import OriginCommand
from firezone.errors import NotFound, Refused


class Command(OriginCommand):
    help = "Hard-delete a disabled account (refused for an enabled one)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("account_id")

    def handle(self, *args: Any, account_id: str, **opts: Any) -> None:
        try:
            pk = uuid.UUID(account_id)
        except ValueError:
            raise CommandError(f"account_id is not a UUID: {account_id!r}") from None
        try:
            account = account_delete_disabled(account_id=pk)
        except (NotFound, Refused) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"account {pk} ({account.slug}) deleted")
