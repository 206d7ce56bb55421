"""Request metadata (protocol.md §2.2): who connects from where, for the device sockets, the
`/live` page socket and portal requests alike. `connect_context(scope)` reads an ASGI scope: the
User-Agent and its component version, the remote IP from `X-Forwarded-For` (walked from the
right, skipping trusted proxies and private ranges), the load balancer's `x-geo-location-*`
headers, and a country centroid when only the region is known.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.auth import Context
from firezone.geo import default_coordinates
from firezone.versions import parse_version

# remote_ip's default "reserved" ranges: never taken as the client address from X-Forwarded-For.
RESERVED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "::1/128",
        "fc00::/7",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
    )
)


@dataclass(frozen=True)
class ConnectContext:
    """Who connects from where (`API.Sockets.auth_context`)."""

    user_agent: str | None
    remote_ip: str | None
    region: str | None = None
    city: str | None = None
    lat: float | None = None
    lon: float | None = None
    version: str | None = None

    def auth_context(self, type: str) -> Context:
        return Context(
            type=type,
            remote_ip=self.remote_ip,
            user_agent=self.user_agent,
            remote_ip_location_region=self.region,
            remote_ip_location_city=self.city,
            remote_ip_location_lat=self.lat,
            remote_ip_location_lon=self.lon,
        )


def _headers(scope: Mapping[str, Any], name: str) -> list[str]:
    key = name.encode("latin-1")
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == key]


def _first(scope: Mapping[str, Any], name: str) -> str | None:
    values = _headers(scope, name)
    return values[0] if values else None


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> Networks:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def _in(address: Any, networks: Iterable[Any]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def real_ip(
    forwarded_for: Iterable[str],
    peer: str | None,
    *,
    trusted_proxies: Networks = (),
    private_clients: Networks = (),
) -> str | None:
    """The client address: the right-most X-Forwarded-For entry that is neither a trusted proxy
    nor in a reserved range (unless listed as a private client); else the TCP peer."""
    entries = [e for value in forwarded_for for e in value.split(",")]
    for entry in reversed(entries):
        address = _parse_ip(entry)
        if address is None:
            continue
        if _in(address, private_clients):
            return str(address)
        if _in(address, trusted_proxies) or _in(address, RESERVED_NETWORKS):
            continue
        return str(address)
    if peer is None:
        return None
    address = _parse_ip(peer)
    return str(address) if address is not None else peer


def _coordinates(value: str | None) -> tuple[float | None, float | None]:
    """`"lat,lon"` → floats; anything unusable (`""`, `","`, garbage, out of range) → None."""
    if not value or "," not in value:
        return None, None
    lat_s, lon_s = value.split(",", 1)
    try:
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        return None, None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None
    return lat, lon


def connect_context(scope: Mapping[str, Any]) -> ConnectContext:
    """The request metadata of an upgrade (§2.2)."""
    user_agent = _first(scope, "user-agent")
    client = scope.get("client")
    peer = client[0] if client else None
    remote_ip = real_ip(
        _headers(scope, "x-forwarded-for"),
        peer,
        trusted_proxies=_networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()))),
        private_clients=_networks(tuple(getattr(settings, "PRIVATE_CLIENTS", ()))),
    )
    region = _first(scope, "x-geo-location-region") or None
    city = _first(scope, "x-geo-location-city") or None
    coordinates = _coordinates(_first(scope, "x-geo-location-coordinates"))
    lat, lon = default_coordinates(region, *coordinates)
    return ConnectContext(
        user_agent=user_agent,
        remote_ip=remote_ip,
        region=region,
        city=city,
        lat=lat,
        lon=lon,
        version=parse_version(user_agent),
    )
