"""The coherent data set of the synthesized protocol fixtures (the same ids, keys and stored
values as tests/fixtures) and the registry of fixture cases (`Case`, `CASES`, `@case`) of the
device-payload tests (test_wire_*.py).

The cases themselves are registered by _wire_cases_client.py and _wire_cases_gateway.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gateways import crypto, wire
from gateways.crypto import IceCredentials, IceCredentialsPair
from resources.access import AccessResource, SiteRef
from resources.versions import adapt_resource_for_version

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def payload_of(name: str) -> Any:
    data = load(name)
    return data["payload"] if isinstance(data, dict) and "event" in data else data


# --- the coherent data set of the synthesized fixtures --------------------------------------------

VECTORS = load("portal_crypto_test_vectors.json")

CLIENT_ID = VECTORS["preshared_key"]["client_id"]

GATEWAY_ID = VECTORS["preshared_key"]["gateway_id"]

SITE = SiteRef(id=uuid.UUID("ef42a07f-87d0-40da-baa7-e881e619ea1c"), name="mycro-aws-gws")

INTERNET_SITE = SiteRef(id=uuid.UUID("eb94482a-94f4-47cb-8127-14fb3afa5516"), name="Internet")

TEST_SITE = SiteRef(id=uuid.UUID("bf56f32d-7b2c-4f5d-a784-788977d014a4"), name="test")

REF = load("gateway_authorize_flow_current.synthesized.json")["payload"]["ref"]

EXPIRES = 1760000000

CLIENT = SimpleNamespace(
    id=uuid.UUID(CLIENT_ID),
    public_key=VECTORS["preshared_key"]["client_public_key"],
    psk_base=bytes.fromhex(VECTORS["preshared_key"]["client_psk_base_hex"]),
    ipv4="100.93.74.51",
    ipv6="fd00:2021:1111::f:853b",
)

GATEWAY = SimpleNamespace(
    id=uuid.UUID(GATEWAY_ID),
    group_id=SITE.id,
    public_key=VECTORS["preshared_key"]["gateway_public_key"],
    psk_base=bytes.fromhex(VECTORS["preshared_key"]["gateway_psk_base_hex"]),
    ipv4="100.72.145.83",
    ipv6="fd00:2021:1111::5:bcfd",
    last_seen_remote_ip="35.244.108.190",
)

PSK, ICE = crypto.pair_credentials(CLIENT, GATEWAY)

HTTPBIN_FILTERS = [
    {"protocol": "tcp", "ports": ["80", "443"]},
    {"protocol": "udp", "ports": ["100 - 200"]},
    {"protocol": "icmp", "ports": []},
]


def resource(**kwargs: Any) -> AccessResource:
    defaults: dict[str, Any] = {
        "address_description": None,
        "ip_stack": None,
        "filters": [],
        "sites": (SITE,),
    }
    defaults.update(kwargs)
    defaults["id"] = uuid.UUID(str(defaults["id"]))
    return AccessResource(**defaults)


HTTPBIN = resource(
    id="733e8d14-c18d-4931-af30-3639fa09c0c0",
    type="dns",
    address="*.httpbin",
    address_description="httpbin wildcard",
    name="httpbin",
    ip_stack="dual",
    filters=HTTPBIN_FILTERS,
)

MYCORP = resource(
    id="73037362-715d-4a83-a749-f18eadd970e6",
    type="cidr",
    address="172.20.0.0/16",
    name="MyCorp Network",
)

SINGLE_HOST = resource(
    id="f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da3",
    type="ip",
    address="172.20.0.100",
    address_description="single host",
    name="Single host",
    filters=[{"protocol": "icmp"}],
)

INTERNET = resource(
    id="1106047c-cd5d-4151-b679-96b93da7383b",
    type="internet",
    address=None,
    name="Internet",
    sites=(INTERNET_SITE,),
)

ACCOUNT_CONFIG = {
    "search_domain": "corp.example.com",
    "clients_upstream_dns": [
        {"protocol": "ip_port", "address": "1.1.1.1"},
        {"protocol": "ip_port", "address": "2606:4700:4700::1111"},
    ],
}


def client_view_for(stored: AccessResource, version: str) -> dict[str, Any] | None:
    """What the client hub sends a client of `version` (None: left out)."""
    adapted = adapt_resource_for_version(stored, version)
    return None if adapted is None else wire.client_resource_view(adapted)


def ice_from(payload: dict[str, Any]) -> IceCredentialsPair:
    return IceCredentialsPair(
        client=IceCredentials(**payload["client_ice_credentials"]),
        gateway=IceCredentials(**payload["gateway_ice_credentials"]),
    )


# --- cases --------------------------------------------------------------------------------------

Path_ = tuple[Any, ...]  # keys, list indices, or "*" for every list element


@dataclass
class Case:
    ours: Any
    theirs: Any
    exact: bool = True
    # Keys one side has and the other legitimately lacks (older portal / connlib test oddities).
    only_ours: list[Path_] = field(default_factory=list)
    only_theirs: list[Path_] = field(default_factory=list)


CASES: dict[str, Callable[[], Case]] = {}


def case(name: str) -> Callable[[Callable[[], Case]], Callable[[], Case]]:
    def register(fn: Callable[[], Case]) -> Callable[[], Case]:
        assert name not in CASES
        CASES[name] = fn
        return fn

    return register
