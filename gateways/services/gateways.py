"""Gateways: authentication and upsert on connect (system path), rename, delete (§2.10)."""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from typing import Any

from django.db import IntegrityError, connection, transaction

from accounts.auth import Context, P, Subject, ensure_permissions
from accounts.models import Token
from accounts.services.tokens import invalid_token, token_use
from firezone import changes
from gateways.models import Gateway, Site
from gateways.services.clients import (
    MSG_TAKEN,
    allocate_missing_addresses,
    constraint_error,
    last_seen_values,
    length_errors,
    load_for_update,
    public_key_errors,
    raise_errors,
)

# Default gateway names: 5 characters without look-alikes (0/o, 1/l).
_NAME_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"

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
    "group_id",
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
    "updated_at",
)

# The name is replaced only when the gateway sends one (%(keep_name)s is true when it did not),
# so a reconnect without a name keeps the current one instead of a new random default.
_GATEWAY_UPSERT_SQL = f"""
INSERT INTO {Gateway._meta.db_table} AS g
    ({", ".join(_UPSERT_COLUMNS)}, last_seen_at, inserted_at, updated_at)
VALUES ({", ".join(f"%({col})s" for col in _UPSERT_COLUMNS)}, now(), now(), now())
ON CONFLICT (account_id, group_id, external_id) DO UPDATE SET
    {", ".join(f"{col} = EXCLUDED.{col}" for col in _UPDATED_ON_CONFLICT)},
    name = CASE WHEN %(keep_name)s THEN g.name ELSE EXCLUDED.name END
RETURNING id
"""  # noqa: S608 (constant identifiers only; values are parameters)

_GATEWAY_CONSTRAINTS = {"gateways_account_id_public_key_index": ("public_key", MSG_TAKEN)}


def default_gateway_name() -> str:
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def gateway_authenticate(encoded: str, *, context: Context) -> tuple[Site, Token]:
    """System path: a gateway token string → its site and token (Unauthorized otherwise)."""
    token = token_use(encoded, context=dataclasses.replace(context, type="gateway_group"))
    site = Site.objects.filter(pk=token.gateway_group_id, account_id=token.account_id).first()
    if site is None:
        raise invalid_token()
    return site, token


@transaction.atomic
def gateway_upsert(
    *,
    site: Site,
    token: Token,
    external_id: str,
    name: str | None = None,
    public_key: str,
    context: Context,
) -> Gateway:
    """System path (gateway socket, after `gateway_authenticate`): create or refresh a gateway
    of the site keyed by its external id, allocating its tunnel addresses when missing."""
    if token.gateway_group_id != site.pk or token.account_id != site.account_id:
        raise invalid_token()
    errors: dict[str, list[str]] = {}
    external_id = (external_id or "").strip()
    errors["external_id"] = length_errors(external_id)
    keep_name = name is None
    name = default_gateway_name() if name is None else name.strip()
    errors["name"] = length_errors(name)
    errors["public_key"] = public_key_errors(public_key)
    last_seen = last_seen_values(context, errors)
    raise_errors(errors)

    existing = (
        Gateway.objects.select_for_update()
        .filter(account_id=site.account_id, group_id=site.pk, external_id=external_id)
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
        "group_id": site.pk,
        "account_id": site.account_id,
        "keep_name": keep_name,
    }
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_GATEWAY_UPSERT_SQL, params)
            gateway_id = cursor.fetchone()[0]
    except IntegrityError as exc:
        if (error := constraint_error(exc, _GATEWAY_CONSTRAINTS)) is None:
            raise
        raise error from exc
    gateway = Gateway.objects.get(pk=gateway_id)
    allocate_missing_addresses(gateway)
    if old_image is None:
        if gateway.pk == params["id"]:
            changes.inserted(gateway)
        # else: created by a concurrent connect, which recorded the insert.
    else:
        changes.updated(old_image, gateway)
    return gateway


@transaction.atomic
def gateway_update(*, subject: Subject, gateway: Gateway | Any, name: str) -> Gateway:
    """Rename a gateway."""
    ensure_permissions(subject, P.GATEWAY_MANAGE)
    gateway = load_for_update(Gateway.objects, gateway, account_id=subject.account_id)
    name = (name or "").strip()
    raise_errors({"name": length_errors(name)})
    old_image = changes.row_image(gateway)
    gateway.name = name
    gateway.save(update_fields=["name", "updated_at"])
    changes.updated(old_image, gateway, subject=subject)
    return gateway


@transaction.atomic
def gateway_delete(*, subject: Subject, gateway: Gateway | Any) -> Gateway:
    """Hard-delete a gateway and its flows; the published delete closes its socket."""
    ensure_permissions(subject, P.GATEWAY_MANAGE)
    gateway = load_for_update(Gateway.objects, gateway, account_id=subject.account_id)
    changes.delete(gateway, subject=subject)
    return gateway
