"""Clients (end-user devices): upsert on connect, rename, verification, deletion (domain.md §2.8).

Also home of the input checks shared with gateways and relays (public keys, names, the
`last_seen_*` columns taken from the request context).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from accounts.auth import Context, P, Subject, ensure_permissions
from accounts.models import Actor
from accounts.validation import MSG_BLANK, MSG_INVALID, is_uuid
from firezone import changes
from firezone.errors import NotFound, ValidationFailed
from firezone.names import short_device_name
from gateways.models import Client
from gateways.services.addresses import address_allocate
from gateways.versions import parse_version

MSG_TAKEN = "has already been taken"
PUBLIC_KEY_LENGTH = 44


# --- shared input checks (clients, gateways, relays) --------------------------------------------


def length_errors(value: str, *, minimum: int = 1, maximum: int = 255) -> list[str]:
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


def last_seen_values(context: Context, errors: dict[str, list[str]]) -> dict[str, Any]:
    """The `last_seen_*` columns from the request context; the version comes from the user agent
    ("is invalid" on `last_seen_user_agent` when it names no Firezone component)."""
    user_agent = (context.user_agent or "")[:255]
    version = parse_version(user_agent)
    if version is None:
        errors.setdefault("last_seen_user_agent", []).append(MSG_INVALID)
    if not context.remote_ip:
        errors.setdefault("last_seen_remote_ip", []).append(MSG_BLANK)
    return {
        "last_seen_user_agent": user_agent,
        "last_seen_remote_ip": context.remote_ip,
        "last_seen_remote_ip_location_region": context.remote_ip_location_region,
        "last_seen_remote_ip_location_city": context.remote_ip_location_city,
        "last_seen_remote_ip_location_lat": context.remote_ip_location_lat,
        "last_seen_remote_ip_location_lon": context.remote_ip_location_lon,
        "last_seen_version": version,
    }


def load_for_update(
    queryset: models.QuerySet, obj_or_id: models.Model | Any, **scope: Any
) -> models.Model:
    """Reload a row (given as instance or id) within `scope`, locked; NotFound otherwise."""
    pk = obj_or_id.pk if isinstance(obj_or_id, models.Model) else obj_or_id
    if pk is None or not is_uuid(str(pk)):
        raise NotFound()
    found = queryset.select_for_update().filter(pk=pk, **scope).first()
    if found is None:
        raise NotFound()
    return found


def allocate_missing_addresses(instance: Client | Any) -> None:
    """Give a client or gateway its tunnel addresses if it has none yet (same transaction)."""
    values = {}
    for field in ("ipv4", "ipv6"):
        if getattr(instance, field) is None:
            values[field] = address_allocate(account_id=instance.account_id, type=field)
    if values:
        type(instance).objects.filter(pk=instance.pk).update(**values)
        for field, value in values.items():
            setattr(instance, field, value)


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


# --- clients ------------------------------------------------------------------------------------

_HARDWARE_IDS = (
    "device_serial",
    "device_uuid",
    "identifier_for_vendor",
    "firebase_installation_id",
)

# The verification survives a reconnect only if every hardware id is unchanged or was unknown
# (a NULL comparison counts as a change, as in the original).
_KEEP_VERIFICATION = " AND ".join(f"(EXCLUDED.{f} = c.{f} OR c.{f} IS NULL)" for f in _HARDWARE_IDS)

_UPSERT_COLUMNS = (
    "id",
    "external_id",
    "name",
    "public_key",
    "psk_base",
    "last_seen_user_agent",
    "last_seen_remote_ip",
    "last_seen_remote_ip_location_region",
    "last_seen_remote_ip_location_city",
    "last_seen_remote_ip_location_lat",
    "last_seen_remote_ip_location_lon",
    "last_seen_version",
    *_HARDWARE_IDS,
    "actor_id",
    "identity_id",
    "account_id",
)
_UPDATED_ON_CONFLICT = (
    "public_key",
    "last_seen_user_agent",
    "last_seen_remote_ip",
    "last_seen_remote_ip_location_region",
    "last_seen_remote_ip_location_city",
    "last_seen_remote_ip_location_lat",
    "last_seen_remote_ip_location_lon",
    "last_seen_version",
    "last_seen_at",
    "identity_id",
    *_HARDWARE_IDS,
    "updated_at",
)

# The name is deliberately not updated on conflict: reconnects keep the user's name.
_CLIENT_UPSERT_SQL = f"""
INSERT INTO {Client._meta.db_table} AS c
    ({", ".join(_UPSERT_COLUMNS)}, last_seen_at, inserted_at, updated_at)
VALUES ({", ".join(f"%({col})s" for col in _UPSERT_COLUMNS)}, now(), now(), now())
ON CONFLICT (account_id, actor_id, external_id) DO UPDATE SET
    {", ".join(f"{col} = EXCLUDED.{col}" for col in _UPDATED_ON_CONFLICT)},
    verified_at = CASE WHEN {_KEEP_VERIFICATION} THEN c.verified_at END,
    verified_by = CASE WHEN {_KEEP_VERIFICATION} THEN c.verified_by END,
    verified_by_subject = CASE WHEN {_KEEP_VERIFICATION} THEN c.verified_by_subject END
RETURNING id
"""  # noqa: S608 (constant identifiers only; values are parameters)

_CLIENT_CONSTRAINTS = {
    "clients_account_id_actor_id_public_key_index": ("public_key", MSG_TAKEN),
}


def _optional_text(value: str | None, field: str, errors: dict[str, list[str]]) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > 255:
        errors.setdefault(field, []).append("should be at most 255 character(s)")
    return value or None


@transaction.atomic
def client_upsert(
    *,
    subject: Subject,
    external_id: str,
    name: str | None = None,
    public_key: str,
    device_serial: str | None = None,
    device_uuid: str | None = None,
    identifier_for_vendor: str | None = None,
    firebase_installation_id: str | None = None,
) -> Client:
    """Create or refresh the subject's client on connect (keyed by the device's external id).

    Allocates its tunnel addresses when missing; changing a known hardware id drops the
    verification (and with it the client's flows).
    """
    ensure_permissions(subject, P.CLIENT_MANAGE_OWN)
    errors: dict[str, list[str]] = {}
    external_id = (external_id or "").strip()
    errors["external_id"] = length_errors(external_id)
    name = short_device_name() if name is None else name.strip()
    errors["name"] = length_errors(name)
    errors["public_key"] = public_key_errors(public_key)
    hardware = {
        field: _optional_text(value, field, errors)
        for field, value in zip(
            _HARDWARE_IDS,
            (device_serial, device_uuid, identifier_for_vendor, firebase_installation_id),
            strict=True,
        )
    }
    last_seen = last_seen_values(subject.context, errors)
    raise_errors(errors)

    actor_id = subject.actor_id
    existing = (
        Client.objects.select_for_update()
        .filter(account_id=subject.account_id, actor_id=actor_id, external_id=external_id)
        .first()
    )
    old_image = changes.row_image(existing)
    params = {
        "id": uuid.uuid4(),
        "external_id": external_id,
        "name": name,
        "public_key": public_key,
        "psk_base": secrets.token_bytes(32),
        **last_seen,
        **hardware,
        "actor_id": actor_id,
        "identity_id": subject.identity.pk if subject.identity is not None else None,
        "account_id": subject.account_id,
    }
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CLIENT_UPSERT_SQL, params)
            client_id = cursor.fetchone()[0]
    except IntegrityError as exc:
        if (error := constraint_error(exc, _CLIENT_CONSTRAINTS)) is None:
            raise
        raise error from exc
    client = Client.objects.get(pk=client_id)
    allocate_missing_addresses(client)

    if old_image is None:
        if client.pk == params["id"]:
            changes.inserted(client, subject=subject)
        # else: created by a concurrent connect, which recorded the insert.
        return client
    if old_image["verified_at"] is not None and client.verified_at is None:
        _delete_flows(client, subject)
    changes.updated(old_image, client, subject=subject)
    return client


def _delete_flows(client: Client, subject: Subject | None) -> None:
    """A client's flows may depend on its verification (policy conditions): drop them."""
    from resources.models import Flow  # resources depends on gateways

    changes.delete(
        Flow.objects.filter(account_id=client.account_id, client=client), subject=subject
    )


def _load_client(subject: Subject, client: Client | Any) -> Client:
    """The subject's own client (`manage_own`) or any client of the account (`manage`)."""
    ensure_permissions(subject, one_of=(P.CLIENT_MANAGE, P.CLIENT_MANAGE_OWN))
    found = load_for_update(Client.objects, client, account_id=subject.account_id)
    if found.actor_id != subject.actor_id:
        ensure_permissions(subject, P.CLIENT_MANAGE)
    return found


@transaction.atomic
def client_update(*, subject: Subject, client: Client | Any, name: str) -> Client:
    """Rename a client (the only user-editable field)."""
    client = _load_client(subject, client)
    name = (name or "").strip()
    raise_errors({"name": length_errors(name)})
    old_image = changes.row_image(client)
    client.name = name
    client.save(update_fields=["name", "updated_at"])
    changes.updated(old_image, client, subject=subject)
    return client


@transaction.atomic
def client_verify(*, subject: Subject, client: Client | Any) -> Client:
    """Mark a client as verified by the subject (no change if it already is)."""
    ensure_permissions(subject, P.CLIENT_VERIFY)
    client = _load_client(subject, client)
    if client.verified_at is not None:
        return client
    old_image = changes.row_image(client)
    trail = subject.trail()
    client.verified_at = timezone.now()
    client.verified_by = trail["created_by"]
    client.verified_by_subject = trail["created_by_subject"]
    client.save(update_fields=["verified_at", "verified_by", "verified_by_subject", "updated_at"])
    changes.updated(old_image, client, subject=subject)
    return client


@transaction.atomic
def client_remove_verification(*, subject: Subject, client: Client | Any) -> Client:
    """Clear a client's verification and delete its flows (policies may have required it)."""
    ensure_permissions(subject, P.CLIENT_VERIFY)
    client = _load_client(subject, client)
    if client.verified_at is None:
        return client
    old_image = changes.row_image(client)
    client.verified_at = client.verified_by = client.verified_by_subject = None
    client.save(update_fields=["verified_at", "verified_by", "verified_by_subject", "updated_at"])
    _delete_flows(client, subject)
    changes.updated(old_image, client, subject=subject)
    return client


@transaction.atomic
def client_delete(*, subject: Subject, client: Client | Any) -> Client:
    """Hard-delete a client and its flows; the published delete closes its socket. Its token
    stays (headless clients may share one)."""
    client = _load_client(subject, client)
    changes.delete(client, subject=subject)
    return client


@transaction.atomic
def clients_delete_for_actor(*, subject: Subject, actor: Actor | Any) -> int:
    """Hard-delete every client of an actor of the subject's account; returns how many."""
    ensure_permissions(subject, P.CLIENT_MANAGE)
    actor_id = actor.pk if isinstance(actor, models.Model) else actor
    if actor_id is None or not is_uuid(str(actor_id)):
        raise NotFound()
    if not Actor.objects.filter(pk=actor_id, account_id=subject.account_id).exists():
        raise NotFound()
    clients = list(
        Client.objects.select_for_update().filter(account_id=subject.account_id, actor_id=actor_id)
    )
    changes.delete(clients, subject=subject)
    return len(clients)
