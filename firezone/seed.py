"""Deterministic demo data. Idempotent: running it twice changes nothing; `reset` starts over."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

STAFF_USERNAME = "staff"
STAFF_EMAIL = "staff@localhost"
# A demo password for local development only; the seed refuses to run outside DEBUG/tests.
STAFF_PASSWORD = "Firezone1234!"


@transaction.atomic
def reset() -> None:
    get_user_model().objects.filter(username=STAFF_USERNAME).delete()


@transaction.atomic
def seed() -> dict[str, Any]:
    User = get_user_model()
    staff, created = User.objects.get_or_create(
        username=STAFF_USERNAME,
        defaults={"email": STAFF_EMAIL, "is_staff": True, "is_superuser": True},
    )
    if created:
        staff.set_password(STAFF_PASSWORD)
        staff.save(update_fields=["password"])
    return {
        "staff": {"username": STAFF_USERNAME, "password": STAFF_PASSWORD, "url": "/admin/"},
        "accounts": [],
        "device_tokens": {},
    }
