"""Gateway queries (domain.md §2.10, §3.3) and the pure rules used to pick a gateway for a
client: version compatibility and nearest-location load balancing."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from accounts.auth import P, Subject, ensure_permissions
from accounts.validation import is_uuid
from firezone.component_versions import latest_version
from firezone.lookup import get_or_not_found
from firezone.versions import version_key
from gateways import presence
from gateways.models import Gateway, Site

EARTH_RADIUS_KM = 6371.0


def _scoped(subject: Subject) -> QuerySet[Gateway]:
    ensure_permissions(subject, one_of=(P.GATEWAY_MANAGE, P.GATEWAY_CONNECT))
    return Gateway.objects.filter(account_id=subject.account_id)


def gateway_get(subject: Subject, *, gateway_id: Any) -> Gateway:
    return get_or_not_found(_scoped(subject).select_related("group"), gateway_id)


def gateway_list(
    subject: Subject, *, site: Site | Any = None, ids: Iterable[str] | None = None
) -> QuerySet[Gateway]:
    """Gateways of the account (or of one site; only `ids` when given, e.g. the online ones),
    oldest first."""
    queryset = _scoped(subject).select_related("group")
    if site is not None:
        site_id = site.pk if isinstance(site, Site) else site
        if not is_uuid(str(site_id)):
            return Gateway.objects.none()
        queryset = queryset.filter(group_id=site_id)
    if ids is not None:
        queryset = queryset.filter(id__in=[i for i in ids if is_uuid(str(i))])
    return queryset.order_by("inserted_at", "id")


@dataclass(frozen=True)
class OnlineGateways:
    """Ids (str) of the gateways online right now: account-wide and per asked-for site."""

    account: frozenset[str] = frozenset()
    sites: dict[str, frozenset[str]] = field(default_factory=dict)

    def of_site(self, site: Site | Any) -> frozenset[str]:
        return self.sites.get(str(site.pk if isinstance(site, Site) else site), frozenset())


def _uuid_keys(presences: dict[str, list[dict]]) -> frozenset[str]:
    return frozenset(key for key in presences if is_uuid(key))


def gateways_online(
    subject: Subject, *, account: bool = False, sites: Iterable[Site | Any] = ()
) -> OnlineGateways:
    """Gateway presence (Redis, one call for all topics): the account's online gateways when
    `account`, and those of each of `sites`."""
    ensure_permissions(subject, one_of=(P.GATEWAY_MANAGE, P.GATEWAY_CONNECT))
    site_ids = [str(s.pk if isinstance(s, Site) else s) for s in sites]
    topics = [presence.group_gateways_topic(site_id) for site_id in site_ids]
    account_topic = presence.account_gateways_topic(subject.account_id)
    if account:
        topics.append(account_topic)
    listed = presence.list_presences_many_sync(topics)
    return OnlineGateways(
        account=_uuid_keys(listed.get(account_topic, {})) if account else frozenset(),
        sites={
            site_id: _uuid_keys(listed.get(presence.group_gateways_topic(site_id), {}))
            for site_id in site_ids
        },
    )


def gateway_latest_version() -> str:
    """The latest published gateway version, as last refreshed (domain.md §5.14,
    firezone/component_versions.py)."""
    return latest_version("gateway")


def gateway_outdated(version: str | None, latest: str | None = None) -> bool:
    """True when `version` is older than the latest gateway version (semantic compare);
    unparseable versions are not flagged."""
    current, newest = version_key(version), version_key(latest or gateway_latest_version())
    return current is not None and newest is not None and current < newest


# --- picking a gateway (pure) -------------------------------------------------------------------


def gateway_compatible(gateway_version: str | None, client_version: str | None) -> bool:
    """A gateway serves clients from one minor version ahead of it to one behind:
    `>= major.(minor-1).0` and `< major.(minor+2).0` of the client. Unparseable → False."""
    gateway, client = version_key(gateway_version), version_key(client_version)
    if gateway is None or client is None:
        return False
    major, minor = client[0], client[1]
    lower = version_key(f"{major}.{max(minor - 1, 0)}.0")
    upper = version_key(f"{major}.{minor + 2}.0")
    assert lower is not None and upper is not None
    return lower <= gateway < upper


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


def _location(gateway: Gateway) -> tuple[float, float] | None:
    lat = gateway.last_seen_remote_ip_location_lat
    lon = gateway.last_seen_remote_ip_location_lon
    return None if lat is None or lon is None else (lat, lon)


def _newest_version_key(gateway: Gateway) -> tuple:
    # Semantic order when parseable (a plain string sort would put 1.10 before 1.9).
    key = version_key(gateway.last_seen_version)
    return (1, key) if key is not None else (0, gateway.last_seen_version or "")


def gateways_pick_nearest(
    gateways: Iterable[Gateway],
    lat: float | None,
    lon: float | None,
    *,
    rng: random.Random | None = None,
) -> Gateway | None:
    """Load balancing among eligible gateways: the nearest location (haversine; gateways without
    a location come last), then the newest version there, then random. Unknown client
    location → any gateway at random. None if there are no candidates."""
    rng = rng or random.SystemRandom()
    candidates: Sequence[Gateway] = list(gateways)
    if not candidates:
        return None
    if lat is None or lon is None:
        return rng.choice(candidates)

    by_location: dict[tuple[float, float] | None, list[Gateway]] = {}
    for gateway in candidates:
        by_location.setdefault(_location(gateway), []).append(gateway)

    def distance(location: tuple[float, float] | None) -> float:
        return math.inf if location is None else haversine_km(lat, lon, *location)

    nearest = by_location[min(by_location, key=distance)]
    newest = max(_newest_version_key(g) for g in nearest)
    return rng.choice([g for g in nearest if _newest_version_key(g) == newest])
