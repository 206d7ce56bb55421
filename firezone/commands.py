"""The base of management commands that write: change-log rows written without a subject name
the command ({"kind": "system", "job": "manage.py <command>"}, firezone/origin.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from firezone.origin import origin, system


class OriginCommand(BaseCommand):
    def execute(self, *args: Any, **options: Any) -> str | None:
        name = type(self).__module__.rsplit(".", 1)[-1]
        with origin(system(f"manage.py {name}")):
            return super().execute(*args, **options)
