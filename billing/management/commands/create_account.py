"""`manage.py create_account <name> <slug> <admin_name> <admin_email>` (billing_sync_jobs.md
§1.4, §1.15 `create_and_provision_account`): a new account with its admin, then its Stripe
customer and subscription (billing on)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from billing.selectors.provisioning import customer_id
from billing.services.ops import account_create_provisioned
from billing.stripe import billing_enabled
from firezone.commands import OriginCommand
from firezone.errors import ValidationFailed


class Command(OriginCommand):
    help = "Create an account with an admin (email sign-in) and provision it in Stripe."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")
        parser.add_argument("slug")
        parser.add_argument("admin_name")
        parser.add_argument("admin_email")

    def handle(
        self, *args: Any, name: str, slug: str, admin_name: str, admin_email: str, **opts: Any
    ) -> None:
        try:
            created = account_create_provisioned(
                name=name, slug=slug, admin_name=admin_name, admin_email=admin_email
            )
        except ValidationFailed as exc:
            raise CommandError(f"invalid input: {_errors(exc)}") from None
        account = created.provisioned.account
        self.stdout.write(f"account {account.pk} ({account.slug}) created")
        if created.billing_error is not None:
            self.stderr.write(
                f"Stripe is unavailable ({created.billing_error}): billing provisioning will "
                "be retried in the background (billing.tasks.provision_account)"
            )
        elif billing_enabled():
            self.stdout.write(f"Stripe customer {customer_id(account)}")


def _errors(exc: ValidationFailed) -> str:
    return "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in exc.errors.items())
