"""`manage.py reject_access <gateway_id> <client_id> <resource_id>` (protocol.md §5.8).

The admin/test hook of the ICMP "prohibited" re-authorisation: the gateway's connected sockets
push `reject_access {client_id, resource_id}` and forget the pair, while the client still
believes it is authorised; its next packet gets an ICMP error and connlib asks for a new flow.
Nothing is written to the database.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from gateways.consumers.gateway import reject_access_send_sync
from gateways.models import Gateway


def _uuid(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"{name} is not a UUID: {value!r}") from None


class Command(BaseCommand):
    help = "Make a connected gateway drop one client's access to one resource (reject_access)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("gateway_id")
        parser.add_argument("client_id")
        parser.add_argument("resource_id")

    def handle(self, *args: Any, gateway_id: str, client_id: str, resource_id: str, **opts: Any):
        gateway = _uuid(gateway_id, "gateway_id")
        client = _uuid(client_id, "client_id")
        resource = _uuid(resource_id, "resource_id")
        if not Gateway.objects.filter(pk=gateway).exists():
            raise CommandError(f"no gateway {gateway}")
        reject_access_send_sync(gateway_id=gateway, client_id=client, resource_id=resource)
        self.stdout.write(f"reject_access sent to gateway {gateway} (if connected)")
