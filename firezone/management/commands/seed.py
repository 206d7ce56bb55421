from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError

from firezone import seed
from firezone.commands import OriginCommand


class Command(OriginCommand):
    help = "Create the deterministic demo data set (idempotent). --reset starts over."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reset", action="store_true", help="Delete seeded data first.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--force", action="store_true", help="Allow seeding with DEBUG off (demo passwords!)."
        )
        parser.add_argument(
            "--synced-groups",
            type=int,
            default=seed.SYNCED_GROUPS,
            metavar="N",
            help=f"Synced IdP groups to bulk-create (default {seed.SYNCED_GROUPS}).",
        )
        parser.add_argument(
            "--max-clients-per-user",
            type=int,
            default=seed.MAX_CLIENTS_PER_USER,
            metavar="N",
            help=(
                "Upper bound of the clients of each 'Firezone Unprivileged N' user "
                f"(default {seed.MAX_CLIENTS_PER_USER})."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not (settings.DEBUG or settings.TESTING or options["force"]):
            raise CommandError("Refusing to seed demo credentials with DEBUG off (use --force).")
        if options["synced_groups"] < 0 or options["max_clients_per_user"] < 2:
            raise CommandError("--synced-groups must be >= 0 and --max-clients-per-user >= 2.")
        if options["reset"]:
            seed.reset()
        result = seed.seed(
            synced_groups=options["synced_groups"],
            max_clients_per_user=options["max_clients_per_user"],
        )
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2, sort_keys=True))
            return
        self.stdout.write(self.style.SUCCESS("Seed data ready."))
        staff = result["staff"]
        self.stdout.write(
            f"  Django admin ({staff['url']}): {staff['username']} / {staff['password']}"
        )
        for account in result["accounts"]:
            self.stdout.write(f"  Account {account['slug']} ({account['id']}): /{account['slug']}")
            for login in account.get("sign_in", []):
                self.stdout.write(
                    f"    {login['provider']}: {login['identifier']} / {login['password']}"
                    f" ({login['role']})"
                )
        for name, token in result["device_tokens"].items():
            self.stdout.write(f"  {name} token: {token}")
        self.stdout.write(f"  API client tokens (REST API at {result['api_url']}):")
        for slug, token in result["api_tokens"].items():
            self.stdout.write(f"    {slug} API client token: {token}")
