"""Pure rules: versions from user agents, client/gateway compatibility, nearest-gateway pick."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firezone.versions import parse_version, release_key, version_key
from gateways.models import Gateway
from gateways.selectors.gateways import gateway_compatible, gateways_pick_nearest, haversine_km


@pytest.mark.parametrize(
    ("user_agent", "version"),
    [
        ("macOS/14.4 apple-client/1.3.0", "1.3.0"),
        ("Ubuntu/22.04 connlib/1.3.2 gateway/1.3.2", "1.3.2"),  # the first component wins
        ("Windows/10 gui-client/1.4.0-pre.1", "1.4.0-pre.1"),
        ("Android/14 android-client/1.2.0", "1.2.0"),
        ("Fedora/40 headless-client/1.1.5", "1.1.5"),
        ("relay/1.0.0", "1.0.0"),
        ("Mozilla/5.0 (X11; Linux)", None),
        ("gateway/", None),
        ("", None),
        (None, None),
        ("xgateway/1.0.0", None),
    ],
)
def test_parse_version(user_agent, version) -> None:
    assert parse_version(user_agent) == version


@pytest.mark.parametrize(
    ("gateway", "client", "compatible"),
    [
        ("1.3.0", "1.3.0", True),
        ("1.2.0", "1.3.5", True),  # one minor behind
        ("1.4.9", "1.3.0", True),  # one minor ahead
        ("1.1.9", "1.3.0", False),
        ("1.5.0", "1.3.0", False),
        ("2.3.0", "1.3.0", False),
        ("1.0.0", "1.0.0", True),
        ("1.1.0", "1.0.0", True),
        ("0.9.0", "1.0.0", False),
        ("1.3.0", "garbage", False),
        ("1.3", "1.3.0", False),
        (None, "1.3.0", False),
        ("1.5.0-beta", "1.3.0", True),  # a pre-release sorts before its release
    ],
)
def test_gateway_compatible(gateway, client, compatible) -> None:
    assert gateway_compatible(gateway, client) is compatible


versions = st.tuples(st.integers(0, 5), st.integers(0, 20), st.integers(0, 20)).map(
    lambda v: ".".join(map(str, v))
)


@given(gateway=versions, client=versions)
def test_compatibility_is_the_minor_window(gateway: str, client: str) -> None:
    (gmaj, gmin, _), (cmaj, cmin, _) = (tuple(map(int, v.split("."))) for v in (gateway, client))
    expected = gmaj == cmaj and cmin - 1 <= gmin <= cmin + 1
    assert gateway_compatible(gateway, client) is expected


def test_version_key_orders_semantically() -> None:
    assert release_key("1.10.0") > release_key("1.9.9")
    assert release_key("1.0.0-rc.1") < release_key("1.0.0")
    assert version_key("v1.0.0") is None


def _gw(name: str, lat=None, lon=None, version="1.3.0") -> Gateway:
    return Gateway(
        name=name,
        last_seen_remote_ip_location_lat=lat,
        last_seen_remote_ip_location_lon=lon,
        last_seen_version=version,
    )


BERLIN, PARIS, NEW_YORK = (52.52, 13.405), (48.8566, 2.3522), (40.7128, -74.006)


def test_haversine() -> None:
    assert haversine_km(*BERLIN, *PARIS) == pytest.approx(878, abs=5)
    assert haversine_km(*BERLIN, *BERLIN) == 0


def _nearest_name(gateways: list[Gateway], *args: Any, **kwargs: Any) -> str:
    picked = gateways_pick_nearest(gateways, *args, **kwargs)
    assert picked is not None
    return picked.name


def test_pick_nearest_location_then_newest_version() -> None:
    gateways = [
        _gw("ny", *NEW_YORK, version="9.9.9"),
        _gw("paris-old", *PARIS, version="1.9.0"),
        _gw("paris-new", *PARIS, version="1.10.0"),  # semantic, not string, order
        _gw("nowhere", version="9.9.9"),
    ]
    for seed in range(20):
        assert _nearest_name(gateways, *BERLIN, rng=random.Random(seed)) == "paris-new"
    assert _nearest_name(gateways, *NEW_YORK) == "ny"


def test_pick_random_within_the_best_group_and_without_location() -> None:
    gateways = [_gw("a", *PARIS), _gw("b", *PARIS), _gw("c", *NEW_YORK)]
    near = {_nearest_name(gateways, *BERLIN, rng=random.Random(s)) for s in range(50)}
    assert near == {"a", "b"}
    anywhere = {_nearest_name(gateways, None, None, rng=random.Random(s)) for s in range(50)}
    assert anywhere == {"a", "b", "c"}


def test_pick_locationless_gateways_last_and_empty() -> None:
    assert _nearest_name([_gw("x"), _gw("y", *NEW_YORK)], *BERLIN) == "y"
    assert _nearest_name([_gw("x")], *BERLIN) == "x"
    assert gateways_pick_nearest([], *BERLIN) is None
