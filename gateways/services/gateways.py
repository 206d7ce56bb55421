"""Gateways: authentication and upsert on connect (system path), rename, delete (§2.10)."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from django.db import transaction

from accounts.auth import Context, P, Subject, ensure_permissions
from accounts.models import Token
from accounts.services.tokens import invalid_token, token_use
from firezone import changes
from firezone.lookup import get_or_not_found
from gateways.models import Gateway, Site
from gateways.services._common import (
    MSG_TAKEN,
    allocate_missing_addresses,
    raise_errors,
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

# Default gateway names: 5 characters without look-alikes (0/o, 1/l).
_NAME_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"

# The name is replaced only when the gateway sends one (%(keep_name)s is true when it did not),
# so a reconnect without a name keeps the current one instead of a new random default.
_GATEWAY_UPSERT_SQL = upsert_with_previous_sql(
    model=Gateway,
    alias="g",
    columns=(
        *TUNNEL_DEVICE_COLUMNS,
        *LAST_SEEN_COLUMNS,
        "group_id",
        "account_id",
    ),
    key=("account_id", "group_id", "external_id"),
    updated=("public_key", *LAST_SEEN_COLUMNS),
    extra_set=("name = CASE WHEN %(keep_name)s THEN g.name ELSE EXCLUDED.name END",),
)

_GATEWAY_CONSTRAINTS = {"gateways_account_id_public_key_index": ("public_key", MSG_TAKEN)}


def default_gateway_name() -> str:
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def gateway_authenticate(encoded: str, *, context: Context) -> tuple[Site, Token]:
    """System path: a gateway token string → its site and token (Unauthorized otherwise)."""
    # The site and its account come with the token row: one SELECT and the token's last-seen
    # UPDATE (the connect checks the account is enabled).
    token = token_use(
        encoded,
        context=dataclasses.replace(context, type="gateway_group"),
        related=("gateway_group__account",),
    )
    site = token.gateway_group
    if site is None or site.account_id != token.account_id:
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
    of the site keyed by its external id, allocating its tunnel addresses when missing. A
    reconnect that changes nothing but the last-seen columns is not recorded in the change log
    (`record_connect`)."""
    if token.gateway_group_id != site.pk or token.account_id != site.account_id:
        raise invalid_token()
    errors: dict[str, list[str]] = {}
    device = tunnel_device_values(
        external_id=external_id,
        name=name,
        default_name=default_gateway_name,
        public_key=public_key,
        errors=errors,
    )
    last_seen = last_seen_values(context, errors)
    raise_errors(errors)

    params = {
        **device,
        **last_seen,
        "group_id": site.pk,
        "account_id": site.account_id,
        "keep_name": name is None,
    }
    # One statement locks, updates (or inserts) and returns the row before and after: a known
    # gateway's reconnect is BEGIN, this, COMMIT.
    gateway, previous = run_upsert_with_previous(
        Gateway, _GATEWAY_UPSERT_SQL, params, constraints=_GATEWAY_CONSTRAINTS
    )
    allocate_missing_addresses(gateway)
    record_connect(previous, gateway, params["id"])
    return gateway


@transaction.atomic
def gateway_delete(*, subject: Subject, gateway: Gateway | Any) -> Gateway:
    """Hard-delete a gateway and its flows; the published delete closes its socket."""
    ensure_permissions(subject, P.GATEWAY_MANAGE)
    gateway = get_or_not_found(Gateway, gateway, for_update=True, account_id=subject.account_id)
    changes.delete(gateway, subject=subject)
    return gateway
