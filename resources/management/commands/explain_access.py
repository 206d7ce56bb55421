"""`manage.py explain_access ACTOR RESOURCE [--at …] [--account …] [...]` (staff, issue 18).

Why an actor can or cannot reach a resource, printed readably: the verdict create_flow would
reach (`resources.explain`), each policy with its conditions, the sites and their gateways.
ACTOR is an id, an identity's email or provider identifier, or a name; RESOURCE an id, a name
or an address; `--account` (id or slug) narrows the search when a name is in several accounts.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from firezone.errors import NotFound
from resources.explain import Ambiguous, access_explain, explain_targets_find, explanation_text


class Command(BaseCommand):
    help = "Explain why an actor can or cannot reach a resource."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("actor", help="id, email or name")
        parser.add_argument("resource", help="id, name or address")
        parser.add_argument("--account", help="id or slug")
        parser.add_argument("--at", help="ISO 8601 instant (default now; no offset: UTC)")
        parser.add_argument("--client", help="client id (default: the most recently seen)")
        parser.add_argument("--location", help="country code")
        parser.add_argument("--remote-ip")
        parser.add_argument("--provider", help="identity provider id")
        parser.add_argument("--verified", choices=("yes", "no"))

    def handle(self, *args: Any, **opts: Any) -> None:
        at = None
        if opts["at"]:
            try:
                at = parse_datetime(opts["at"])
            except ValueError:
                at = None
            if at is None:
                raise CommandError(f"--at is not an ISO 8601 date and time: {opts['at']!r}")
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
        try:
            account, actor, resource = explain_targets_find(
                actor=opts["actor"], resource=opts["resource"], account=opts["account"]
            )
            explanation = access_explain(
                account=account,
                actor=actor,
                resource=resource,
                client=opts["client"],
                at=at,
                location=opts["location"].upper() if opts["location"] else None,
                remote_ip=opts["remote_ip"],
                provider_id=opts["provider"],
                verified=None if opts["verified"] is None else opts["verified"] == "yes",
            )
        except Ambiguous as exc:
            raise CommandError(
                f"several {exc.what}s match; use an id: {', '.join(exc.matches)}"
            ) from None
        except NotFound:
            raise CommandError(
                "no such actor, resource or client (ids, emails and names are looked up; "
                "the resource and the client must be in the actor's account)"
            ) from None
        self.stdout.write(explanation_text(explanation))
