"""Relay groups and relays: self-hosted groups, global groups, tokens, upsert on connect (§2.11).

Global relay groups (account NULL) are operated by Firezone and created by the system; account
groups are self-hosted relays (admins only, feature `self_hosted_relays`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import uuid
from typing import Any

from django.db import transaction
from django.db.models import Q

from accounts.auth import SYSTEM_TRAIL, Context, P, Subject, ensure_permissions
from accounts.features import feature_enabled
from accounts.models import Token
from accounts.services.tokens import IssuedToken, invalid_token, token_create, token_use
from firezone import changes
from firezone.errors import Refused, Unauthorized
from firezone.lookup import get_or_not_found
from firezone.names import adjective_noun
from gateways.models import Relay, RelayGroup
from gateways.services._common import (
    MSG_TAKEN,
    clean_name,
    length_errors,
    raise_errors,
    rename,
    save_named,
)
from gateways.services._upsert import (
    LAST_SEEN_COLUMNS,
    last_seen_values,
    record_upsert,
    run_upsert,
    upsert_sql,
)

RELAY_GROUP_NAME_MAX_LENGTH = 64
DEFAULT_RELAY_PORT = 3478
_GROUP_CONSTRAINTS = {
    "relay_groups_account_id_name_index": ("name", MSG_TAKEN),
    "relay_groups_name_index": ("name", MSG_TAKEN),
}


def _group_name(name: str | None) -> str:
    """The given name, checked, or a random "adjective-noun"."""
    return (
        adjective_noun() if name is None else clean_name(name, maximum=RELAY_GROUP_NAME_MAX_LENGTH)
    )


def _ensure_self_hosted_relays(subject: Subject) -> None:
    if not feature_enabled(subject.account, "self_hosted_relays"):
        raise Refused(
            "Self-hosted relays are not enabled for this account.", code="feature_not_enabled"
        )


@transaction.atomic
def relay_group_create(*, subject: Subject, name: str | None = None) -> RelayGroup:
    """Create a self-hosted relay group of the subject's account."""
    ensure_permissions(subject, P.RELAY_MANAGE)
    _ensure_self_hosted_relays(subject)
    name = _group_name(name)
    group = RelayGroup(account_id=subject.account_id, name=name, **subject.trail())
    save_named(group, create=True, constraints=_GROUP_CONSTRAINTS)
    changes.inserted(group, subject=subject)
    return group


def _load_account_group(subject: Subject, group: RelayGroup | Any) -> RelayGroup:
    """A group visible to the subject (own account or global); global ones are read-only."""
    ensure_permissions(subject, P.RELAY_MANAGE)
    scope = Q(account_id=subject.account_id) | Q(account_id__isnull=True)
    found = get_or_not_found(RelayGroup.objects.filter(scope), group, for_update=True)
    if found.is_global:
        raise Unauthorized("Global relay groups cannot be changed.", reason="global_relay_group")
    return found


@transaction.atomic
def relay_group_update(*, subject: Subject, group: RelayGroup | Any, name: str) -> RelayGroup:
    """Rename a self-hosted relay group."""
    group = _load_account_group(subject, group)
    rename(
        group,
        name,
        subject=subject,
        maximum=RELAY_GROUP_NAME_MAX_LENGTH,
        constraints=_GROUP_CONSTRAINTS,
    )
    return group


@transaction.atomic
def relay_group_delete(*, subject: Subject, group: RelayGroup | Any) -> RelayGroup:
    """Hard-delete a self-hosted relay group with its relays and tokens (sockets closed)."""
    group = _load_account_group(subject, group)
    changes.delete(group, subject=subject)
    return group


@transaction.atomic
def relay_group_create_global(*, name: str | None = None) -> RelayGroup:
    """System path (seeds, operations): a Firezone-operated relay group (no account)."""
    name = _group_name(name)
    group = RelayGroup(
        account=None,
        name=name,
        created_by=SYSTEM_TRAIL["created_by"],
        created_by_subject=dict(SYSTEM_TRAIL["created_by_subject"]),
    )
    save_named(group, create=True, constraints=_GROUP_CONSTRAINTS)
    changes.inserted(group)
    return group


@transaction.atomic
def relay_group_token_create(*, subject: Subject, group: RelayGroup | Any) -> IssuedToken:
    """Issue a never-expiring token for the relays of a self-hosted group (shown once)."""
    group = _load_account_group(subject, group)
    _ensure_self_hosted_relays(subject)
    return token_create(
        type=Token.Type.RELAY_GROUP,
        account=subject.account,
        relay_group=group,
        context=subject.context,
        subject=subject,
    )


@transaction.atomic
def relay_group_tokens_delete(*, subject: Subject, group: RelayGroup | Any) -> int:
    """The "Revoke All" event: hard-delete every token of a self-hosted group (its relays are
    disconnected); returns how many. Global groups are refused like other changes."""
    group = _load_account_group(subject, group)
    ensure_permissions(subject, P.TOKEN_MANAGE)
    recorded = changes.delete(
        Token.objects.filter(relay_group=group, account_id=subject.account_id), subject=subject
    )
    return sum(1 for c in recorded if c.table == "tokens")


@transaction.atomic
def relay_group_token_create_global(*, group: RelayGroup) -> IssuedToken:
    """System path: a token (without account) for the relays of a global group."""
    group = get_or_not_found(RelayGroup, group, for_update=True, account_id__isnull=True)
    return token_create(type=Token.Type.RELAY_GROUP, account=None, relay_group=group)


def relay_authenticate(encoded: str, *, context: Context) -> tuple[RelayGroup, Token]:
    """System path: a relay token string → its group and token (Unauthorized otherwise)."""
    token = token_use(encoded, context=dataclasses.replace(context, type="relay_group"))
    group_id = token.relay_group_id
    group = RelayGroup.objects.filter(pk=group_id).first() if group_id is not None else None
    if group is None or group.account_id != token.account_id:
        raise invalid_token()
    return group, token


# Conflict targets: the expression indexes relays_unique_address_index (account relays) and
# global_relays_unique_address_index (global relays).
_GLOBAL_TARGET = "((COALESCE(ipv4, ipv6)), port) WHERE account_id IS NULL"
_ACCOUNT_TARGET = "(account_id, (COALESCE(ipv4, ipv6)), port) WHERE account_id IS NOT NULL"


def _relay_upsert_sql(target: str) -> str:
    return upsert_sql(
        table=Relay._meta.db_table,
        alias="r",
        columns=(
            "id",
            "name",
            "ipv4",
            "ipv6",
            "port",
            *LAST_SEEN_COLUMNS,
            "group_id",
            "account_id",
        ),
        conflict=target,
        updated=("ipv4", "ipv6", "port", "name", *LAST_SEEN_COLUMNS),
    )


_RELAY_UPSERT_SQL = {
    True: _relay_upsert_sql(_GLOBAL_TARGET),
    False: _relay_upsert_sql(_ACCOUNT_TARGET),
}


def _ip(value: str | None, version: int, errors: list[str]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        address = None
    if address is None or address.version != version:
        errors.append("is invalid")
        return None
    return str(address)


@transaction.atomic
def relay_upsert(
    *,
    group: RelayGroup,
    token: Token,
    ipv4: str | None = None,
    ipv6: str | None = None,
    port: int = DEFAULT_RELAY_PORT,
    name: str | None = None,
    context: Context,
) -> Relay:
    """System path (relay socket, after `relay_authenticate`): create or refresh the relay at
    this address and port (global relays and account relays are keyed separately)."""
    if token.relay_group_id != group.pk or token.account_id != group.account_id:
        raise invalid_token()
    errors: dict[str, list[str]] = {"ipv4": [], "ipv6": [], "port": [], "name": []}
    ipv4 = _ip(ipv4, 4, errors["ipv4"])
    ipv6 = _ip(ipv6, 6, errors["ipv6"])
    if ipv4 is None and ipv6 is None and not errors["ipv4"] and not errors["ipv6"]:
        message = "one of these fields must be present: ipv4, ipv6"
        errors["ipv4"].append(message)
        errors["ipv6"].append(message)
    if isinstance(port, str) and port.strip().isascii() and port.strip().isdigit():
        # Socket params carry strings. Ecto casts any digit string (a bignum): one of more than
        # five significant digits is out of range without `int()` (which refuses 4,300+ digits).
        digits = port.strip().lstrip("0") or "0"
        port = int(digits) if len(digits) <= 5 else 65536
    if not isinstance(port, int) or isinstance(port, bool):
        errors["port"].append("is invalid")
    elif port < 1:
        errors["port"].append("must be greater than or equal to 1")
    elif port > 65535:
        errors["port"].append("must be less than or equal to 65535")
    if name is not None:
        name = name.strip()
        errors["name"] = length_errors(name)
    last_seen = last_seen_values(context, errors)
    raise_errors(errors)

    is_global = group.account_id is None
    existing = (
        Relay.objects.select_for_update()
        .filter(Q(ipv4=ipv4) if ipv4 is not None else Q(ipv4__isnull=True, ipv6=ipv6))
        .filter(port=port)
        .filter(Q(account__isnull=True) if is_global else Q(account_id=group.account_id))
        .first()
    )
    old_image = changes.row_image(existing) if existing is not None else None
    params = {
        "id": uuid.uuid4(),
        "name": name,
        "ipv4": ipv4,
        "ipv6": ipv6,
        "port": port,
        **last_seen,
        "group_id": group.pk,
        "account_id": group.account_id,
    }
    relay = run_upsert(Relay, _RELAY_UPSERT_SQL[is_global], params)
    record_upsert(old_image, relay, params["id"])
    return relay


@transaction.atomic
def relay_delete(*, subject: Subject, relay: Relay | Any) -> Relay:
    """Hard-delete a self-hosted relay (global relays are refused like their groups)."""
    ensure_permissions(subject, P.RELAY_MANAGE)
    scope = Q(account_id=subject.account_id) | Q(account_id__isnull=True)
    relay = get_or_not_found(Relay.objects.filter(scope), relay, for_update=True)
    if relay.account_id is None:
        raise Unauthorized("Global relays cannot be deleted.", reason="global_relay")
    changes.delete(relay, subject=subject)
    return relay
