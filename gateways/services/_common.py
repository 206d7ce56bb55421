"""Input checks and save helpers shared by the gateways services (clients, gateways, sites,
relays): names, public keys, field errors, unique-index violations, tunnel addresses."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, models, transaction

from accounts.auth import Subject
from accounts.validation import MSG_BLANK, MSG_INVALID
from firezone import changes
from firezone.errors import ValidationFailed
from gateways.models import Client, Gateway, RelayGroup, Site
from gateways.services.addresses import address_allocate

MSG_TAKEN = "has already been taken"
PUBLIC_KEY_LENGTH = 44


def nul_errors(value: str | None) -> list[str]:
    """A NUL byte is permanent bad input that PostgreSQL text cannot store: "is invalid"."""
    return [MSG_INVALID] if value is not None and "\x00" in value else []


def length_errors(value: str, *, minimum: int = 1, maximum: int = 255) -> list[str]:
    if "\x00" in value:
        return nul_errors(value)
    if len(value) < minimum:
        return [MSG_BLANK] if not value else [f"should be at least {minimum} character(s)"]
    if len(value) > maximum:
        return [f"should be at most {maximum} character(s)"]
    return []


def public_key_errors(public_key: str | None) -> list[str]:
    """A WireGuard public key: valid base64, exactly 44 characters."""
    if not public_key:
        return [MSG_BLANK]
    errors = []
    try:
        base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError):
        errors.append("must be a base64-encoded string")
    if len(public_key) != PUBLIC_KEY_LENGTH:
        errors.append(f"should be {PUBLIC_KEY_LENGTH} character(s)")
    return errors


def raise_errors(errors: Mapping[str, Sequence[str]]) -> None:
    """Raise ValidationFailed with the fields that have messages, if any."""
    errors = {field: list(msgs) for field, msgs in errors.items() if msgs}
    if errors:
        raise ValidationFailed(errors)


def clean_name(name: str | None, *, maximum: int = 255) -> str:
    """A trimmed, required name of at most `maximum` characters (ValidationFailed on `name`)."""
    name = (name or "").strip()
    raise_errors({"name": length_errors(name, maximum=maximum)})
    return name


def constraint_error(
    exc: IntegrityError, by_constraint: Mapping[str, tuple[str, str]]
) -> ValidationFailed | None:
    """The field error a unique-index violation stands for, or None if it is another error."""
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None) or ""
    for constraint, (field, message) in by_constraint.items():
        if constraint == name or constraint in str(exc):
            return ValidationFailed({field: [message]})
    return None


def save_named(
    instance: models.Model, *, create: bool, constraints: Mapping[str, tuple[str, str]]
) -> None:
    """Insert, or save a new name, inside a savepoint so a unique-index violation of
    `constraints` (name → field, message) becomes a field error, not a broken transaction."""
    try:
        with transaction.atomic():
            if create:
                instance.save(force_insert=True)
            else:
                instance.save(update_fields=["name", "updated_at"])
    except IntegrityError as exc:
        if (error := constraint_error(exc, constraints)) is None:
            raise
        raise error from exc


def allocate_missing_addresses(instance: Any) -> None:
    """Give a client or gateway its tunnel addresses if it has none yet (same transaction)."""
    values = {}
    for field in ("ipv4", "ipv6"):
        if getattr(instance, field) is None:
            values[field] = address_allocate(account_id=instance.account_id, type=field)
    if values:
        type(instance).objects.filter(pk=instance.pk).update(**values)
        for field, value in values.items():
            setattr(instance, field, value)


def rename(
    instance: Site | Gateway | Client | RelayGroup,
    name: str | None,
    *,
    subject: Subject,
    maximum: int = 255,
    constraints: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """Give a loaded (locked) row a new, checked name and record the update."""
    name = clean_name(name, maximum=maximum)
    old_image = changes.row_image(instance)
    instance.name = name
    save_named(instance, create=False, constraints=constraints or {})
    changes.updated(old_image, instance, subject=subject)
