"""Every payload the portal pushes or replies to a device (protocol.md §3), in one place.

Pure functions from domain data to JSON-ready dicts: no database, no I/O. The consumers decide
*when* to send; this module decides *what the bytes look like*. connlib is strict about types
(unix seconds are integers, keys are 44-char base64, an unparseable relay or interface entry
voids a whole `init`), so every shape here is checked against `tests/fixtures/*.json`.

Inputs are duck-typed: model instances, dataclasses (e.g. `resources.access.AccessResource`) or
dicts with the same field names. Relay lists arrive already rendered (`gateways.turn`), since
their credentials depend on presence data this module does not see.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, overload

from accounts.validation import normalize_upstream_dns_address
from firezone.addresses import parse_port_range
from gateways.crypto import IceCredentials, IceCredentialsPair
from resources.versions import adapt_resource_for_version

logger = logging.getLogger(__name__)

# --- event names ----------------------------------------------------------------------------------

INIT: Final = "init"
CONFIG_CHANGED: Final = "config_changed"
RESOURCE_CREATED_OR_UPDATED: Final = "resource_created_or_updated"
RESOURCE_DELETED: Final = "resource_deleted"
FLOW_CREATED: Final = "flow_created"
FLOW_CREATION_FAILED: Final = "flow_creation_failed"
ICE_CANDIDATES: Final = "ice_candidates"
INVALIDATE_ICE_CANDIDATES: Final = "invalidate_ice_candidates"
RELAYS_PRESENCE: Final = "relays_presence"
AUTHORIZE_FLOW: Final = "authorize_flow"
REQUEST_CONNECTION: Final = "request_connection"
ALLOW_ACCESS: Final = "allow_access"
REJECT_ACCESS: Final = "reject_access"
ACCESS_AUTHORIZATION_EXPIRY_UPDATED: Final = "access_authorization_expiry_updated"
RESOURCE_UPDATED: Final = "resource_updated"
DISCONNECT: Final = "disconnect"

# `flow_creation_failed` reasons and legacy error reply reasons (§3.1.6, §3.1.9).
NOT_FOUND: Final = "not_found"
FORBIDDEN: Final = "forbidden"
OFFLINE: Final = "offline"

# WireGuard keepalive the legacy handshake announces (§3.1.9, §3.2.7).
PERSISTENT_KEEPALIVE: Final = 25

# The gateway's `init.config` is required by connlib but unused: always both true (§3.2.2).
GATEWAY_CONFIG: Final = {"ipv4_masquerade_enabled": True, "ipv6_masquerade_enabled": True}


# --- small helpers --------------------------------------------------------------------------------


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _id(value: Any) -> str | None:
    """Ids are lowercase hyphenated UUID strings on the wire."""
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(value)


def _ip(value: Any) -> str | None:
    return None if value is None else str(value)


@overload
def unix(value: datetime | int | float) -> int: ...
@overload
def unix(value: None) -> None: ...
def unix(value: datetime | int | float | None) -> int | None:
    """Unix seconds as a JSON integer (connlib parses `ts_seconds`; a float or string fails)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


def _ice(credentials: IceCredentials | Mapping[str, str]) -> dict[str, str]:
    if isinstance(credentials, IceCredentials):
        return credentials.as_dict()
    return {"username": str(credentials["username"]), "password": str(credentials["password"])}


# --- resources ------------------------------------------------------------------------------------


def filters_view(filters: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """DB filters `[{protocol, ports: ["80", "100 - 200"]}]` → one wire entry per port element
    (§3.2.3): `{"protocol","port_range_start","port_range_end"}`, `{"protocol"}` for a whole
    protocol, `{"protocol":"icmp"}`. An empty list means "everything allowed"."""
    rendered: list[dict[str, Any]] = []
    for entry in filters or ():
        protocol = entry.get("protocol")
        if not isinstance(protocol, str):
            continue
        ports = entry.get("ports") or []
        if protocol == "icmp" or not ports:
            rendered.append({"protocol": protocol})
            continue
        for port in ports:
            try:
                start, end = parse_port_range(port)
            except ValueError:
                # Stored filters are validated on write; never let one bad element void a push.
                logger.warning("skipping malformed port range %r", port)
                continue
            rendered.append(
                {"protocol": protocol, "port_range_start": start, "port_range_end": end}
            )
    return rendered


def resource_address(resource: Any) -> str | None:
    """The wire address: `ip` resources become a /32 or /128 CIDR, CIDRs are canonical (host
    bits cleared: connlib skips `192.168.1.1/28`), DNS patterns are sent as stored."""
    kind, address = _get(resource, "type"), _get(resource, "address")
    if address is None:
        return None
    if kind == "ip":
        ip = ipaddress.ip_address(str(address).strip())
        return f"{ip}/{ip.max_prefixlen}"
    if kind == "cidr":
        return str(ipaddress.ip_network(str(address).strip(), strict=False))
    return str(address)


def _wire_type(resource: Any) -> str:
    kind = _get(resource, "type")
    return "cidr" if kind == "ip" else str(kind)


def site_view(site: Any) -> dict[str, str | None]:
    return {"id": _id(_get(site, "id")), "name": _get(site, "name")}


def client_resource_view(resource: Any, sites: Iterable[Any] | None = None) -> dict[str, Any]:
    """The client resource view (§3.1.2) of an already version-adapted resource. `sites`
    defaults to the resource's own `sites` attribute (its connected sites, never empty)."""
    gateway_groups = [
        site_view(s) for s in (sites if sites is not None else _get(resource, "sites"))
    ]
    if _get(resource, "type") == "internet":
        return {
            "id": _id(_get(resource, "id")),
            "type": "internet",
            "gateway_groups": gateway_groups,
            "can_be_disabled": True,
        }
    view: dict[str, Any] = {
        "id": _id(_get(resource, "id")),
        "type": _wire_type(resource),
        "address": resource_address(resource),
        "address_description": _get(resource, "address_description"),
        "name": _get(resource, "name"),
        "gateway_groups": gateway_groups,
        "filters": filters_view(_get(resource, "filters")),
    }
    if _get(resource, "type") == "dns" and _get(resource, "ip_stack") is not None:
        view["ip_stack"] = _get(resource, "ip_stack")
    return view


def gateway_resource_view(resource: Any) -> dict[str, Any]:
    """The gateway resource view (§3.2.3) of an already version-adapted resource: no
    description, ip_stack or sites (the gateway parser is strict about unknown types)."""
    if _get(resource, "type") == "internet":
        return {"id": _id(_get(resource, "id")), "type": "internet"}
    return {
        "id": _id(_get(resource, "id")),
        "type": _wire_type(resource),
        "address": resource_address(resource),
        "name": _get(resource, "name"),
        "filters": filters_view(_get(resource, "filters")),
    }


def gateway_resource_view_for(resource: Any, version: str | None) -> dict[str, Any] | None:
    """Adapt for a gateway of `version` (§3.2.3: same rules as clients) and render; None = the
    gateway cannot serve it (do not send)."""
    adapted = adapt_resource_for_version(resource, version)
    return None if adapted is None else gateway_resource_view(adapted)


# --- client channel -------------------------------------------------------------------------------


def upstream_dns_view(entries: Iterable[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """Account `clients_upstream_dns` → `[{"protocol":"ip_port","address":"ip:port"}]`, port
    defaulting to 53, IPv6 bracketed. Entries connlib cannot parse (another protocol, a bad
    address) are dropped: any one of them would make the whole message unparseable."""
    rendered: list[dict[str, str]] = []
    for entry in entries or ():
        if not isinstance(entry, Mapping) or entry.get("protocol") != "ip_port":
            continue
        address = entry.get("address")
        if not isinstance(address, str):
            continue
        try:
            rendered.append(
                {"protocol": "ip_port", "address": normalize_upstream_dns_address(address)}
            )
        except ValueError:
            logger.warning("skipping malformed upstream DNS address %r", address)
    return rendered


def interface_view(client: Any, account_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The client `interface` object of `init` / `config_changed` (§3.1.2)."""
    config = account_config or {}
    return {
        "search_domain": config.get("search_domain") or None,
        "upstream_dns": upstream_dns_view(config.get("clients_upstream_dns")),
        "ipv4": _ip(_get(client, "ipv4")),
        "ipv6": _ip(_get(client, "ipv6")),
    }


def client_init(
    *,
    resources: Iterable[dict[str, Any]],
    relays: Sequence[dict[str, Any]],
    interface: dict[str, Any],
) -> dict[str, Any]:
    """`init` (S→C): rendered client resource views, rendered relay views, the interface."""
    return {"resources": list(resources), "relays": list(relays), "interface": interface}


def config_changed(interface: dict[str, Any]) -> dict[str, Any]:
    return {"interface": interface}


def resource_created_or_updated(view: dict[str, Any]) -> dict[str, Any]:
    """Payload: one client resource view."""
    return view


def resource_deleted(resource_id: Any) -> str:
    """Payload: the bare resource id string (not an object)."""
    return _id(resource_id) or ""


def flow_created(
    *,
    resource_id: Any,
    gateway: Any,
    preshared_key: str,
    ice: IceCredentialsPair,
) -> dict[str, Any]:
    """`flow_created` (S→C) for the gateway that answered `flow_authorized`."""
    return {
        "resource_id": _id(resource_id),
        "gateway_id": _id(_get(gateway, "id")),
        "gateway_group_id": _id(_get(gateway, "group_id")),
        "gateway_public_key": _get(gateway, "public_key"),
        "gateway_ipv4": _ip(_get(gateway, "ipv4")),
        "gateway_ipv6": _ip(_get(gateway, "ipv6")),
        "preshared_key": preshared_key,
        "client_ice_credentials": _ice(ice.client),
        "gateway_ice_credentials": _ice(ice.gateway),
    }


def flow_creation_failed(
    resource_id: Any, reason: str, violated_properties: Iterable[str] | None = None
) -> dict[str, Any]:
    """`flow_creation_failed` (S→C); `violated_properties` only for `forbidden`."""
    payload: dict[str, Any] = {"resource_id": _id(resource_id), "reason": reason}
    if reason == FORBIDDEN:
        payload["violated_properties"] = list(violated_properties or ())
    return payload


def client_ice_candidates(gateway_id: Any, candidates: Sequence[str]) -> dict[str, Any]:
    """`ice_candidates` / `invalidate_ice_candidates` (S→C): forwarded verbatim from a gateway."""
    return {"gateway_id": _id(gateway_id), "candidates": list(candidates)}


def relays_presence(
    *, disconnected_ids: Iterable[Any], connected: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """`relays_presence` (S→C and S→G): relays to drop and the full current selection."""
    return {"disconnected_ids": [_id(i) for i in disconnected_ids], "connected": list(connected)}


# Legacy (< 1.4) client replies (§3.1.9): the `response` of the phx_reply.


def error_response(reason: str, violated_properties: Iterable[str] | None = None) -> dict[str, Any]:
    """`{"reason": ...}` (+ `violated_properties` for `forbidden`) of an error reply."""
    response: dict[str, Any] = {"reason": reason}
    if reason == FORBIDDEN:
        response["violated_properties"] = list(violated_properties or ())
    return response


def prepare_connection_reply(*, resource_id: Any, gateway: Any) -> dict[str, Any]:
    return {
        "resource_id": _id(resource_id),
        "gateway_group_id": _id(_get(gateway, "group_id")),
        "gateway_id": _id(_get(gateway, "id")),
        "gateway_remote_ip": _ip(_get(gateway, "last_seen_remote_ip")),
    }


def request_connection_reply(
    *, resource_id: Any, gateway_public_key: str, gateway_payload: Any
) -> dict[str, Any]:
    """The delayed reply to a legacy `request_connection`, once the gateway sent
    `connection_ready`; `gateway_payload` is passed through verbatim."""
    return {
        "resource_id": _id(resource_id),
        "persistent_keepalive": PERSISTENT_KEEPALIVE,
        "gateway_public_key": gateway_public_key,
        "gateway_payload": gateway_payload,
    }


# --- gateway channel ------------------------------------------------------------------------------


def authorization_view(client_id: Any, resource_id: Any, expires_at: Any) -> dict[str, Any]:
    return {
        "client_id": _id(client_id),
        "resource_id": _id(resource_id),
        "expires_at": unix(expires_at),
    }


def gateway_init(
    *,
    gateway: Any,
    account_slug: str,
    relays: Sequence[dict[str, Any]],
    authorizations: Iterable[tuple[Any, Any, Any]] = (),
) -> dict[str, Any]:
    """`init` (S→G). `authorizations`: `(client_id, resource_id, latest expiry)` per cached pair;
    `relays` rendered with the gateway's key and a 90-day expiry."""
    return {
        "authorizations": [authorization_view(c, r, e) for c, r, e in authorizations],
        "account_slug": account_slug,
        "interface": {"ipv4": _ip(_get(gateway, "ipv4")), "ipv6": _ip(_get(gateway, "ipv6"))},
        "relays": list(relays),
        "config": dict(GATEWAY_CONFIG),
    }


def _client_peer(client: Any, preshared_key: str) -> dict[str, Any]:
    return {
        "id": _id(_get(client, "id")),
        "public_key": _get(client, "public_key"),
        "preshared_key": preshared_key,
        "ipv4": _ip(_get(client, "ipv4")),
        "ipv6": _ip(_get(client, "ipv6")),
    }


def authorize_flow(
    *,
    ref: str,
    resource: dict[str, Any],
    client: Any,
    preshared_key: str,
    ice: IceCredentialsPair,
    expires_at: Any,
) -> dict[str, Any]:
    """`authorize_flow` (S→G). `resource` is the gateway view (adapted for the gateway);
    `ref` the signed correlation token echoed in `flow_authorized`."""
    return {
        "ref": ref,
        "resource": resource,
        "client": _client_peer(client, preshared_key),
        "client_ice_credentials": _ice(ice.client),
        "gateway_ice_credentials": _ice(ice.gateway),
        "expires_at": unix(expires_at),
    }


def request_connection(
    *,
    ref: str,
    resource: dict[str, Any],
    client: Any,
    client_payload: Any,
    client_preshared_key: str,
    expires_at: Any,
) -> dict[str, Any]:
    """Legacy `request_connection` (S→G): the client's own PSK and payload, passed through."""
    return {
        "ref": ref,
        "resource": resource,
        "client": {
            "id": _id(_get(client, "id")),
            "payload": client_payload,
            "peer": {
                "persistent_keepalive": PERSISTENT_KEEPALIVE,
                "public_key": _get(client, "public_key"),
                "preshared_key": client_preshared_key,
                "ipv4": _ip(_get(client, "ipv4")),
                "ipv6": _ip(_get(client, "ipv6")),
            },
        },
        "expires_at": unix(expires_at),
    }


def allow_access(
    *, ref: str, client: Any, resource: dict[str, Any], expires_at: Any, payload: Any
) -> dict[str, Any]:
    """Legacy `allow_access` (S→G) for a `reuse_connection`; `payload` is the client's DNS
    resolve request or None."""
    return {
        "ref": ref,
        "client_id": _id(_get(client, "id")),
        "resource": resource,
        "expires_at": unix(expires_at),
        "payload": payload,
        "client_ipv4": _ip(_get(client, "ipv4")),
        "client_ipv6": _ip(_get(client, "ipv6")),
    }


def reject_access(client_id: Any, resource_id: Any) -> dict[str, Any]:
    return {"client_id": _id(client_id), "resource_id": _id(resource_id)}


def access_authorization_expiry_updated(
    client_id: Any, resource_id: Any, expires_at: Any
) -> dict[str, Any]:
    return authorization_view(client_id, resource_id, expires_at)


def resource_updated(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource_updated` (S→G): a gateway resource view (adapted for that gateway)."""
    return resource


def gateway_ice_candidates(client_id: Any, candidates: Sequence[str]) -> dict[str, Any]:
    """`ice_candidates` / `invalidate_ice_candidates` (S→G): forwarded verbatim from a client."""
    return {"client_id": _id(client_id), "candidates": list(candidates)}


# --- relay channel / any socket -------------------------------------------------------------------


def relay_init() -> dict[str, Any]:
    return {}


def disconnect_token_expired() -> dict[str, Any]:
    """`disconnect` payload; connlib treats it as fatal (sign-out / relay exit)."""
    return {"reason": "token_expired"}
