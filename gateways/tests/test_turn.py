"""TURN credentials and the relay view (protocol.md §3.1.2, §4.3) against the shared vectors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateways.relay_selection import RelayCandidate
from gateways.turn import (
    GATEWAY_CREDENTIALS_SECONDS,
    NO_EXPIRY_CREDENTIALS_SECONDS,
    client_credentials_expiry,
    gateway_credentials_expiry,
    relay_views,
    turn_credentials,
    turn_password,
    username_salt,
)

# Frames as connlib parses them (protocol.md §8).
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def _load(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize("vector", _load("relay_credentials_test_vectors.json"))
def test_relay_password_vectors(vector: dict) -> None:
    password = turn_password(vector["expiry"], vector["relay_secret"], vector["username_salt"])
    assert password == vector["password"]


def test_credentials_from_a_public_key() -> None:
    vector = _load("portal_crypto_test_vectors.json")["relay_credentials"]
    username, password = turn_credentials(
        vector["device_public_key"], vector["stamp_secret"], vector["expires_at"]
    )
    assert username == vector["expected_username"]
    assert password == vector["expected_password"]
    assert username == f"{vector['expires_at']}:{username_salt(vector['device_public_key'])}"
    assert "=" not in username and "=" not in password


def _relay(**kwargs) -> RelayCandidate:
    base = {
        "id": "0a133356-7a9e-4b9a-b413-0d95a5720fd8",
        "ipv4": "172.28.0.101",
        "ipv6": "172:28:0::101",
        "port": 3478,
        "lat": None,
        "lon": None,
        "secret": _load("portal_crypto_test_vectors.json")["relay_credentials"]["stamp_secret"],
        "online_at": 0,
    }
    return RelayCandidate(**{**base, **kwargs})


def test_relay_views_match_the_relays_presence_fixture() -> None:
    vector = _load("portal_crypto_test_vectors.json")["relay_credentials"]
    fixture = _load("client_relays_presence_leave.synthesized.json")["payload"]["connected"]
    views = relay_views([_relay()], vector["device_public_key"], vector["expires_at"])
    assert views == fixture
    # Same key order as the fixture (connlib does not care, humans reading logs do).
    assert [list(v) for v in views] == [list(f) for f in fixture]


def test_relay_views_one_entry_per_address_ipv4_first() -> None:
    key = "fiAjSBWDgQfD1CFJkTwOf4zg+1QhH0eTT+oLaVIMpH8="
    only_v6 = _relay(id="r2", ipv4=None, ipv6="2001:db8::1", port=3479, secret="other")
    views = relay_views([_relay(ipv6=None), only_v6], key, 1760000000)
    assert [(v["id"], v["addr"]) for v in views] == [
        ("0a133356-7a9e-4b9a-b413-0d95a5720fd8", "172.28.0.101:3478"),
        ("r2", "[2001:db8::1]:3479"),
    ]
    assert all(v["type"] == "turn" and v["expires_at"] == 1760000000 for v in views)
    assert isinstance(views[0]["expires_at"], int)
    # Credentials are per relay secret.
    assert views[0]["password"] != views[1]["password"]
    assert views[0]["username"] == views[1]["username"]
    assert relay_views([], key, 1) == []


def test_gateway_credentials_last_90_days() -> None:
    assert GATEWAY_CREDENTIALS_SECONDS == 7_776_000
    assert gateway_credentials_expiry(1_000.9) == 7_777_000


def test_client_credentials_expire_with_the_token() -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    assert client_credentials_expiry(expires, now=1_000.0) == int(expires.timestamp())


def test_client_credentials_without_token_expiry_roll_7_days() -> None:
    assert NO_EXPIRY_CREDENTIALS_SECONDS == 604_800
    assert client_credentials_expiry(None, now=1_000.9) == 605_800
