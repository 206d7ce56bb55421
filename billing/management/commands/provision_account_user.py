"""`manage.py provision_account_user <account_slug> <name> <email> [--type …]`
(billing_sync_jobs.md §1.15 `provision_account_user`, `provision_support_by_account_slug`): an
admin (default) or user with an identity at the account's email provider."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from accounts.models import Actor
from billing.services.ops import account_user_provision
from firezone.commands import OriginCommand
from firezone.errors import NotFound, Refused, ValidationFailed


class Command(OriginCommand):
    help = "Add an admin or support user with an email identity to an account (by slug)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("account_slug")
        parser.add_argument("name")
        parser.add_argument("email")
        parser.add_argument(
            "--type",
            default=Actor.Type.ACCOUNT_ADMIN_USER,
            choices=[Actor.Type.ACCOUNT_ADMIN_USER, Actor.Type.ACCOUNT_USER],
        )

    def handle(
        self, *args: Any, account_slug: str, name: str, email: str, type: str, **opts: Any
    ) -> None:
        try:
            identity = account_user_provision(
                account_slug=account_slug, name=name, email=email, type=type
            )
        except (NotFound, Refused) as exc:
            raise CommandError(str(exc)) from None
        except ValidationFailed as exc:
            details = "; ".join(f"{f}: {', '.join(m)}" for f, m in exc.errors.items())
            raise CommandError(f"invalid input: {details}") from None
        self.stdout.write(
            f"actor {identity.actor_id} ({type}) with email identity {identity.provider_identifier}"
            f" created in {account_slug}"
        )
