"""Clients (end-user devices): upsert on connect, rename, verification, deletion (§2.8)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.auth import P, Subject, ensure_permissions
from firezone import changes
from firezone.lookup import get_or_not_found
from firezone.names import short_device_name
from gateways.models import Client
from gateways.services._common import (
    MSG_TAKEN,
    allocate_missing_addresses,
    nul_errors,
    raise_errors,
    rename,
)
from gateways.services._upsert import (
    LAST_SEEN_COLUMNS,
    TUNNEL_DEVICE_COLUMNS,
    last_seen_values,
    record_connect,
    run_upsert_with_previous,
    tunnel_device_values,
    upsert_with_previous_sql,
)
from resources.models import Flow

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

# The name is deliberately not updated on conflict: reconnects keep the user's name.
_CLIENT_UPSERT_SQL = upsert_with_previous_sql(
    model=Client,
    alias="c",
    columns=(
        *TUNNEL_DEVICE_COLUMNS,
        *LAST_SEEN_COLUMNS,
        *_HARDWARE_IDS,
        "actor_id",
        "identity_id",
        "account_id",
    ),
    key=("account_id", "actor_id", "external_id"),
    updated=("public_key", *LAST_SEEN_COLUMNS, "identity_id", *_HARDWARE_IDS),
    extra_set=(
        f"verified_at = CASE WHEN {_KEEP_VERIFICATION} THEN c.verified_at END",
        f"verified_by = CASE WHEN {_KEEP_VERIFICATION} THEN c.verified_by END",
        f"verified_by_subject = CASE WHEN {_KEEP_VERIFICATION} THEN c.verified_by_subject END",
    ),
)

_CLIENT_CONSTRAINTS = {
    "clients_account_id_actor_id_public_key_index": ("public_key", MSG_TAKEN),
}


def _optional_text(value: str | None, field: str, errors: dict[str, list[str]]) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if "\x00" in value:
        errors.setdefault(field, []).extend(nul_errors(value))
    elif len(value) > 255:
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
    verification (and with it the client's flows). A reconnect that changes nothing but the
    last-seen columns is not recorded in the change log (`record_connect`).
    """
    ensure_permissions(subject, P.CLIENT_MANAGE_OWN)
    errors: dict[str, list[str]] = {}
    device = tunnel_device_values(
        external_id=external_id,
        name=name,
        default_name=short_device_name,
        public_key=public_key,
        errors=errors,
    )
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

    params = {
        **device,
        **last_seen,
        **hardware,
        "actor_id": subject.actor_id,
        "identity_id": subject.identity.pk if subject.identity is not None else None,
        "account_id": subject.account_id,
    }
    # One statement locks, updates (or inserts) and returns the row before and after: a known
    # client's reconnect is BEGIN, this, COMMIT.
    client, previous = run_upsert_with_previous(
        Client, _CLIENT_UPSERT_SQL, params, constraints=_CLIENT_CONSTRAINTS
    )
    allocate_missing_addresses(client)
    if previous is not None and previous.verified_at is not None and client.verified_at is None:
        _delete_flows(client, subject)
    record_connect(previous, client, params["id"], subject=subject)
    return client


def _delete_flows(client: Client, subject: Subject | None) -> None:
    """A client's flows may depend on its verification (policy conditions): drop them."""

    changes.delete(
        Flow.objects.filter(account_id=client.account_id, client=client), subject=subject
    )


def _load_client(subject: Subject, client: Client | Any) -> Client:
    """The subject's own client (`manage_own`) or any client of the account (`manage`)."""
    ensure_permissions(subject, one_of=(P.CLIENT_MANAGE, P.CLIENT_MANAGE_OWN))
    found = get_or_not_found(Client, client, for_update=True, account_id=subject.account_id)
    if found.actor_id != subject.actor_id:
        ensure_permissions(subject, P.CLIENT_MANAGE)
    return found


@transaction.atomic
def client_update(*, subject: Subject, client: Client | Any, name: str) -> Client:
    """Rename a client (the only user-editable field)."""
    client = _load_client(subject, client)
    rename(client, name, subject=subject)
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
