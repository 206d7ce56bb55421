"""Device payloads (gateways/wire.py) against the protocol fixtures — scenario 71.

Every portal→device fixture in tests/fixtures is rebuilt here from equivalent domain data (the
same ids, keys and stored values) through `gateways.wire`. The synthesized fixtures (what the
portal sends at the reference commit) must come out byte-for-byte equal; the samples copied from
connlib's own tests are older or deliberately odd, so for them the JSON *shape* (keys and JSON
types) must match once the documented, per-fixture differences are set aside.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

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


def client_view_for(stored: AccessResource, version: str) -> dict[str, Any] | None:
    """What the client hub sends a client of `version` (None: left out)."""
    adapted = adapt_resource_for_version(stored, version)
    return None if adapted is None else wire.client_resource_view(adapted)


ACCOUNT_CONFIG = {
    "search_domain": "corp.example.com",
    "clients_upstream_dns": [
        {"protocol": "ip_port", "address": "1.1.1.1"},
        {"protocol": "ip_port", "address": "2606:4700:4700::1111"},
    ],
}


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


# Client channel -----------------------------------------------------------------------------------


@case("client_init_full.synthesized.json")
def _client_init_full() -> Case:
    theirs = payload_of("client_init_full.synthesized.json")
    ours = wire.client_init(
        resources=[wire.client_resource_view(r) for r in (HTTPBIN, MYCORP, SINGLE_HOST, INTERNET)],
        relays=theirs["relays"],  # rendered by gateways.turn
        interface=wire.interface_view(CLIENT, ACCOUNT_CONFIG),
    )
    return Case(ours, theirs)


def _client_init_sample_resources() -> list[dict[str, Any]]:
    rows = [
        resource(
            id="73037362-715d-4a83-a749-f18eadd970e6",
            type="cidr",
            address="172.172.0.0/16",
            address_description="cidr resource",
            name="172.172.0.0/16",
            sites=(TEST_SITE,),
        ),
        resource(
            id="73037362-715d-4a83-a749-f18eadd970e7",
            type="cidr",
            address="172.173.0.0/16",
            name="172.173.0.0/16",
            sites=(TEST_SITE,),
        ),
        resource(
            id="03000143-e25e-45c7-aafb-144990e57dcd",
            type="dns",
            address="gitlab.mycorp.com",
            address_description="dns resource",
            name="gitlab.mycorp.com",
            sites=(TEST_SITE,),
        ),
        resource(
            id="03000143-e25e-45c7-aafb-144990e57dce",
            type="dns",
            address="github.mycorp.com",
            name="github.mycorp.com",
            sites=(TEST_SITE,),
        ),
    ]
    return [wire.client_resource_view(r) for r in rows]


SAMPLE_CLIENT = SimpleNamespace(ipv4="100.72.112.111", ipv6="fd00:2021:1111::13:efb9")


@case("client_init.json")
def _client_init_sample() -> Case:
    # An older connlib sample: no relays key, no filters, no search_domain; DNS resources carried
    # their own proxy IPs then. The DB rows here have no ip_stack (so none is rendered).
    ours = wire.client_init(
        resources=_client_init_sample_resources(),
        relays=[],
        interface=wire.interface_view(SAMPLE_CLIENT, {}),
    )
    return Case(
        ours,
        payload_of("client_init.json"),
        exact=False,
        only_ours=[
            ("relays",),
            ("interface", "search_domain"),
            ("resources", "*", "filters"),
            ("resources", 3, "address_description"),
        ],
        only_theirs=[("resources", 2, "ipv4"), ("resources", 2, "ipv6")],
    )


@case("client_init_bad_resources.json")
def _client_init_bad_resources() -> Case:
    # The first three entries are malformed on purpose (connlib skips them); the fourth is ours.
    theirs = payload_of("client_init_bad_resources.json")
    theirs["resources"] = theirs["resources"][3:]
    ours = wire.client_init(
        resources=_client_init_sample_resources()[3:],
        relays=[],
        interface=wire.interface_view(SAMPLE_CLIENT, {}),
    )
    return Case(
        ours,
        theirs,
        exact=False,
        only_ours=[
            ("relays",),
            ("interface", "search_domain"),
            ("resources", "*", "filters"),
            ("resources", "*", "address_description"),
        ],
    )


def _resource_list_case(name: str, keep: int) -> Case:
    theirs = load(name)[:keep]
    rows = _client_init_sample_resources()[0:1] + _client_init_sample_resources()[2:3]
    internet = resource(
        id="1106047c-cd5d-4151-b679-96b93da7383b",
        type="internet",
        address=None,
        name="Internet",
        sites=(SiteRef(id=uuid.UUID("eb94482a-94f4-47cb-8127-14fb3afa5516"), name="test"),),
    )
    ours = [*rows, wire.client_resource_view(internet)]
    return Case(
        ours,
        theirs,
        exact=False,
        only_ours=[(0, "filters"), (1, "filters"), (2, "can_be_disabled")],
        # connlib's test adds unknown keys to prove they are ignored; the portal sends no name.
        only_theirs=[(2, "name"), (2, "not"), (2, "some_other")],
    )


@case("client_resources_list_with_internet.json")
def _client_resources_with_internet() -> Case:
    return _resource_list_case("client_resources_list_with_internet.json", 3)


@case("client_resources_list_with_unknown_type.json")
def _client_resources_with_unknown_type() -> Case:
    # The fourth entry has an unknown type (skipped by connlib); the portal never sends one.
    return _resource_list_case("client_resources_list_with_unknown_type.json", 3)


def _dns_sample_case(name: str, ip_stack: str | None) -> Case:
    row = {
        "id": "03000143-e25e-45c7-aafb-144990e57dce",
        "type": "dns",
        "address": "example.com",
        "address_description": None,
        "name": "example.com",
        "ip_stack": ip_stack,
        "filters": [],
    }
    return Case(
        wire.client_resource_view(row, sites=[TEST_SITE]),
        load(name),
        exact=False,
        only_ours=[("address_description",), ("filters",)],
    )


for _stack in ("dual", "ipv4_only", "ipv6_only"):
    _name = f"client_resource_dns_ip_stack_{_stack}.json"
    case(_name)(lambda _name=_name, _stack=_stack: _dns_sample_case(_name, _stack))
case("client_resource_dns_no_ip_stack.json")(
    lambda: _dns_sample_case("client_resource_dns_no_ip_stack.json", None)
)


@case("client_resource_created_or_updated.synthesized.json")
def _resource_created() -> Case:
    return Case(
        wire.resource_created_or_updated(wire.client_resource_view(HTTPBIN)),
        payload_of("client_resource_created_or_updated.synthesized.json"),
    )


@case("client_resource_created_or_updated_internet.synthesized.json")
def _resource_created_internet() -> Case:
    return Case(
        wire.resource_created_or_updated(client_view_for(INTERNET, "1.5.4")),
        payload_of("client_resource_created_or_updated_internet.synthesized.json"),
    )


@case("client_resource_deleted.synthesized.json")
def _resource_deleted() -> Case:
    return Case(
        wire.resource_deleted(HTTPBIN.id),
        payload_of("client_resource_deleted.synthesized.json"),
    )


@case("client_config_changed_full.synthesized.json")
def _config_changed_full() -> Case:
    return Case(
        wire.config_changed(wire.interface_view(CLIENT, {"search_domain": None})),
        payload_of("client_config_changed_full.synthesized.json"),
    )


@case("client_config_changed.json")
def _config_changed_sample() -> Case:
    sample_client = SimpleNamespace(ipv4="100.67.138.25", ipv6="fd00:2021:1111::e:65ea")
    config = {"clients_upstream_dns": [{"protocol": "ip_port", "address": "1.1.1.1"}]}
    return Case(
        wire.config_changed(wire.interface_view(sample_client, config)),
        payload_of("client_config_changed.json"),
        exact=False,
        only_ours=[("interface", "search_domain")],  # older sample; null is accepted
    )


@case("client_flow_created_full.synthesized.json")
def _flow_created_full() -> Case:
    return Case(
        wire.flow_created(resource_id=HTTPBIN.id, gateway=GATEWAY, preshared_key=PSK, ice=ICE),
        payload_of("client_flow_created_full.synthesized.json"),
    )


@case("client_flow_created.json")
def _flow_created_sample() -> Case:
    theirs = payload_of("client_flow_created.json")
    # Same ids/keys as ours but credentials from other psk bases: feed them as given.
    return Case(
        wire.flow_created(
            resource_id=theirs["resource_id"],
            gateway=GATEWAY,
            preshared_key=theirs["preshared_key"],
            ice=ice_from(theirs),
        ),
        theirs,
    )


@case("client_flow_creation_failed_forbidden.synthesized.json")
def _flow_failed_forbidden() -> Case:
    return Case(
        wire.flow_creation_failed(
            HTTPBIN.id, wire.FORBIDDEN, ["remote_ip_location_region", "current_utc_datetime"]
        ),
        payload_of("client_flow_creation_failed_forbidden.synthesized.json"),
    )


@case("client_flow_creation_failed_not_found.synthesized.json")
def _flow_failed_not_found() -> Case:
    return Case(
        wire.flow_creation_failed(HTTPBIN.id, wire.NOT_FOUND),
        payload_of("client_flow_creation_failed_not_found.synthesized.json"),
    )


@case("client_flow_creation_failed_offline.json")
def _flow_failed_offline() -> Case:
    return Case(
        wire.flow_creation_failed(SINGLE_HOST.id, wire.OFFLINE),
        payload_of("client_flow_creation_failed_offline.json"),
    )


@case("client_flow_creation_failed_unknown_reason.json")
def _flow_failed_unknown() -> Case:
    # connlib tolerates reasons it does not know; the shape is the same.
    return Case(
        wire.flow_creation_failed(SINGLE_HOST.id, "foobar"),
        payload_of("client_flow_creation_failed_unknown_reason.json"),
    )


def _client_ice_case(name: str) -> Case:
    theirs = payload_of(name)
    return Case(wire.client_ice_candidates(theirs["gateway_id"], theirs["candidates"]), theirs)


for _name in (
    "client_ice_candidates.json",
    "client_ice_candidates_from_gateway.synthesized.json",
    "client_invalidate_ice_candidates.json",
    "client_invalidate_ice_candidates_from_gateway.synthesized.json",
    "client_gateway_ice_candidates_with_faulty.json",
):
    case(_name)(lambda _name=_name: _client_ice_case(_name))


def _relays_presence_case(name: str) -> Case:
    theirs = payload_of(name)
    ours = wire.relays_presence(
        disconnected_ids=[uuid.UUID(i) for i in theirs["disconnected_ids"]],
        connected=theirs["connected"],  # rendered by gateways.turn
    )
    return Case(ours, theirs)


for _name in (
    "client_relays_presence.json",
    "client_relays_presence_leave.synthesized.json",
    "gateway_relays_presence.json",
):
    case(_name)(lambda _name=_name: _relays_presence_case(_name))


# Legacy client replies (the `response` of the phx_reply) ------------------------------------------


@case("legacy_client_prepare_connection_reply_frame.synthesized.json")
def _prepare_reply_frame() -> Case:
    return Case(
        wire.prepare_connection_reply(resource_id=HTTPBIN.id, gateway=GATEWAY),
        payload_of("legacy_client_prepare_connection_reply_frame.synthesized.json")["response"],
    )


@case("legacy_client_prepare_connection_reply.json")
def _prepare_reply_sample() -> Case:
    theirs = load("legacy_client_prepare_connection_reply.json")
    gateway = SimpleNamespace(
        id=theirs["gateway_id"],
        group_id=theirs["gateway_group_id"],
        last_seen_remote_ip=theirs["gateway_remote_ip"],
    )
    return Case(
        wire.prepare_connection_reply(resource_id=theirs["resource_id"], gateway=gateway), theirs
    )


def _request_reply_case(name: str, frame: bool) -> Case:
    theirs = payload_of(name)["response"] if frame else load(name)
    return Case(
        wire.request_connection_reply(
            resource_id=theirs["resource_id"],
            gateway_public_key=theirs["gateway_public_key"],
            gateway_payload=copy.deepcopy(theirs["gateway_payload"]),  # passed through verbatim
        ),
        theirs,
    )


case("legacy_client_request_connection_reply_frame.synthesized.json")(
    lambda: _request_reply_case(
        "legacy_client_request_connection_reply_frame.synthesized.json", True
    )
)
case("legacy_client_request_connection_reply.json")(
    lambda: _request_reply_case("legacy_client_request_connection_reply.json", False)
)


# Gateway channel ----------------------------------------------------------------------------------


@case("gateway_init_full.synthesized.json")
def _gateway_init_full() -> Case:
    theirs = payload_of("gateway_init_full.synthesized.json")
    return Case(
        wire.gateway_init(
            gateway=GATEWAY,
            account_slug="firezone",
            relays=theirs["relays"],  # rendered by gateways.turn (gateway key, 90 days)
            authorizations=[(CLIENT.id, HTTPBIN.id, EXPIRES)],
        ),
        theirs,
    )


@case("gateway_init.json")
def _gateway_init_sample() -> Case:
    gateway = SimpleNamespace(ipv4="100.115.164.78", ipv6="fd00:2021:1111::2c:f6ab")
    return Case(
        wire.gateway_init(gateway=gateway, account_slug="firezone", relays=[]),
        payload_of("gateway_init.json"),
        exact=False,
        # The minimal connlib sample omits the optional keys (defaults: [] / none).
        only_ours=[("authorizations",), ("account_slug",), ("relays",)],
    )


@case("gateway_authorize_flow_current.synthesized.json")
def _authorize_flow() -> Case:
    return Case(
        wire.authorize_flow(
            ref=REF,
            resource=wire.gateway_resource_view_for(HTTPBIN, "1.4.17"),
            client=CLIENT,
            preshared_key=PSK,
            ice=ICE,
            expires_at=EXPIRES,
        ),
        payload_of("gateway_authorize_flow_current.synthesized.json"),
    )


@case("gateway_authorize_flow_internet.synthesized.json")
def _authorize_flow_internet() -> Case:
    return Case(
        wire.authorize_flow(
            ref=REF,
            resource=wire.gateway_resource_view_for(INTERNET, "1.4.17"),
            client=CLIENT,
            preshared_key=PSK,
            ice=ICE,
            expires_at=EXPIRES,
        ),
        payload_of("gateway_authorize_flow_internet.synthesized.json"),
    )


@case("gateway_authorize_flow.json")
def _authorize_flow_sample() -> Case:
    theirs = payload_of("gateway_authorize_flow.json")
    sample = resource(
        id=theirs["resource"]["id"], type="cidr", address="172.20.0.0/16", name="MyCorp Network"
    )
    return Case(
        wire.authorize_flow(
            ref=theirs["ref"],
            resource=wire.gateway_resource_view(sample),
            client=CLIENT,
            preshared_key=theirs["client"]["preshared_key"],
            ice=ice_from(theirs),
            expires_at=theirs["expires_at"],
        ),
        theirs,
        exact=False,
        only_theirs=[("actor",), ("flow_id",)],  # older portal; not sent at this commit
    )


@case("gateway_request_connection_current.synthesized.json")
def _request_connection() -> Case:
    theirs = payload_of("gateway_request_connection_current.synthesized.json")
    return Case(
        wire.request_connection(
            ref=REF,
            resource=wire.gateway_resource_view_for(MYCORP, "1.3.2"),
            client=CLIENT,
            client_payload=copy.deepcopy(theirs["client"]["payload"]),
            client_preshared_key=PSK,
            expires_at=EXPIRES,
        ),
        theirs,
    )


@case("gateway_request_connection.json")
def _request_connection_sample() -> Case:
    theirs = payload_of("gateway_request_connection.json")
    peer = theirs["client"]["peer"]
    client = SimpleNamespace(
        id=theirs["client"]["id"],
        public_key=peer["public_key"],
        ipv4=peer["ipv4"],
        ipv6=peer["ipv6"],
    )
    sample = resource(
        id=theirs["resource"]["id"], type="cidr", address="172.20.0.0/16", name="172.20.0.1/16"
    )
    return Case(
        wire.request_connection(
            ref=theirs["ref"],
            resource=wire.gateway_resource_view(sample),
            client=client,
            client_payload=copy.deepcopy(theirs["client"]["payload"]),
            client_preshared_key=peer["preshared_key"],
            expires_at=theirs["expires_at"],
        ),
        theirs,
        exact=False,
        only_theirs=[("actor",), ("relays",)],  # older portal; not sent at this commit
    )


@case("gateway_request_connection_with_domain.json")
def _request_connection_with_domain() -> Case:
    theirs = payload_of("gateway_request_connection_with_domain.json")
    peer = theirs["client"]["peer"]
    client = SimpleNamespace(
        id=theirs["client"]["id"],
        public_key=peer["public_key"],
        ipv4=peer["ipv4"],
        ipv6=peer["ipv6"],
    )
    # Stored with the current wildcard syntax; a pre-1.2 gateway gets the old one (`*` → `?`).
    stored = resource(
        id=theirs["resource"]["id"],
        type="dns",
        address="*.httpbin",
        name="?.httpbin",
        ip_stack="dual",
        filters=[
            {"protocol": "tcp", "ports": ["80", "433"]},
            {"protocol": "udp", "ports": ["53"]},
            {"protocol": "icmp"},
        ],
    )
    return Case(
        wire.request_connection(
            ref=theirs["ref"],
            resource=wire.gateway_resource_view_for(stored, "1.1.3"),
            client=client,
            client_payload=copy.deepcopy(theirs["client"]["payload"]),
            client_preshared_key=peer["preshared_key"],
            expires_at=theirs["expires_at"],
        ),
        theirs,
        exact=False,
        only_theirs=[("actor",), ("relays",), ("flow_id",)],
    )


@case("gateway_allow_access.synthesized.json")
def _allow_access() -> Case:
    theirs = payload_of("gateway_allow_access.synthesized.json")
    return Case(
        wire.allow_access(
            ref=REF,
            client=CLIENT,
            resource=wire.gateway_resource_view_for(HTTPBIN, "1.3.2"),
            expires_at=EXPIRES,
            payload=copy.deepcopy(theirs["payload"]),
        ),
        theirs,
    )


@case("gateway_reject_access.synthesized.json")
def _reject_access() -> Case:
    return Case(
        wire.reject_access(CLIENT.id, HTTPBIN.id),
        payload_of("gateway_reject_access.synthesized.json"),
    )


@case("gateway_access_authorization_expiry_updated.synthesized.json")
def _expiry_updated() -> Case:
    from datetime import UTC, datetime

    return Case(
        wire.access_authorization_expiry_updated(
            CLIENT_ID, HTTPBIN.id, datetime.fromtimestamp(1760003600.75, tz=UTC)
        ),
        payload_of("gateway_access_authorization_expiry_updated.synthesized.json"),
    )


@case("gateway_resource_updated.json")
def _resource_updated_sample() -> Case:
    stored = resource(
        id="57f9ebbb-21d5-4f9f-bf86-b25122fc7a43",
        type="dns",
        address="?.httpbin",
        name="?.httpbin",
        ip_stack="dual",
        filters=[{"protocol": "icmp"}, {"protocol": "tcp", "ports": []}],
    )
    return Case(
        wire.resource_updated(wire.gateway_resource_view_for(stored, "1.4.17")),
        payload_of("gateway_resource_updated.json"),
    )


@case("gateway_resource_updated_cidr.synthesized.json")
def _resource_updated_cidr() -> Case:
    from dataclasses import replace

    updated = replace(SINGLE_HOST, filters=[{"protocol": "tcp", "ports": ["22"]}])
    return Case(
        wire.resource_updated(wire.gateway_resource_view_for(updated, "1.4.17")),
        payload_of("gateway_resource_updated_cidr.synthesized.json"),
    )


@case("gateway_resources_list_with_internet.json")
def _gateway_resources_with_internet() -> Case:
    rows = [
        resource(
            id="73037362-715d-4a83-a749-f18eadd970e6",
            type="cidr",
            address="172.172.0.0/16",
            name="172.172.0.0/16",
        ),
        resource(
            id="03000143-e25e-45c7-aafb-144990e57dcd",
            type="dns",
            address="gitlab.mycorp.com",
            name="gitlab.mycorp.com",
            ip_stack="dual",
        ),
        INTERNET,
    ]
    return Case(
        [wire.gateway_resource_view(r) for r in rows],
        load("gateway_resources_list_with_internet.json"),
        exact=False,
        only_theirs=[(2, "not"), (2, "some_other")],  # unknown keys connlib must ignore
    )


@case("gateway_filters.json")
def _gateway_filters() -> Case:
    stored = [
        {"protocol": "udp", "ports": ["10 - 20"]},
        {"protocol": "udp", "ports": []},
        {"protocol": "tcp", "ports": ["10-20"]},
        {"protocol": "tcp"},
        {"protocol": "icmp"},
    ]
    return Case(wire.filters_view(stored), load("gateway_filters.json"))


def _gateway_ice_case(name: str) -> Case:
    theirs = payload_of(name)
    return Case(wire.gateway_ice_candidates(theirs["client_id"], theirs["candidates"]), theirs)


for _name in (
    "gateway_ice_candidates_from_client.synthesized.json",
    "gateway_invalidate_ice_candidates.json",
    "gateway_client_ice_candidates_with_faulty.json",
):
    case(_name)(lambda _name=_name: _gateway_ice_case(_name))


# Relay channel / disconnects ----------------------------------------------------------------------

case("relay_init.synthesized.json")(
    lambda: Case(wire.relay_init(), payload_of("relay_init.synthesized.json"))
)
for _name in (
    "relay_disconnect_token_expired.synthesized.json",
    "phoenix_disconnect_token_expired.json",
):
    case(_name)(lambda _name=_name: Case(wire.disconnect_token_expired(), payload_of(_name)))


# Fixtures that are not portal→device payloads of this module.
NOT_PAYLOADS = {
    # device → portal frames
    "client_broadcast_ice_candidates.synthesized.json",
    "client_broadcast_invalidated_ice_candidates.synthesized.json",
    "client_create_flow.json",
    "client_create_flow_frame.synthesized.json",
    "client_phx_join.synthesized.json",
    "gateway_broadcast_ice_candidates.synthesized.json",
    "gateway_broadcast_invalidated_ice_candidates.synthesized.json",
    "gateway_flow_authorized.synthesized.json",
    "gateway_phx_join.synthesized.json",
    "legacy_client_prepare_connection.synthesized.json",
    "legacy_client_request_connection.synthesized.json",
    "legacy_client_reuse_connection.synthesized.json",
    "legacy_gateway_connection_ready.synthesized.json",
    "relay_phx_join.synthesized.json",
    "phoenix_heartbeat.synthesized.json",
    "phoenix_phx_join_request.json",
    # Phoenix framing (joins, replies, close/error): tests/test_phoenix_*.py
    "phoenix_heartbeat_reply.synthesized.json",
    "phoenix_inbound_message.json",
    "phoenix_phx_close.json",
    "phoenix_phx_close_real.synthesized.json",
    "phoenix_phx_error.synthesized.json",
    "phoenix_phx_join_reply_ok.json",
    "phoenix_reply_error_disabled.json",
    "phoenix_reply_error_invalid_ref.synthesized.json",
    "phoenix_reply_error_invalid_version.json",
    "phoenix_reply_error_other.json",
    "phoenix_reply_error_unknown_message.synthesized.json",
    "phoenix_reply_error_unmatched_topic.json",
    "phoenix_reply_error_unmatched_topic_real.synthesized.json",
    "phoenix_reply_ok_empty.synthesized.json",
    # test vectors: test_crypto.py (relay ones: the relay-credentials module)
    "portal_crypto_test_vectors.json",
    "relay_credentials_test_vectors.json",
}


# --- comparison helpers -----------------------------------------------------------------------


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively (what connlib's serde definitions care about)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    assert value is None, f"not JSON: {value!r}"
    return "null"


def drop(value: Any, path: Path_) -> None:
    """Remove the key at `path` (which must exist: a stale allowance is an error)."""
    head, rest = path[0], path[1:]
    if not rest:
        assert isinstance(value, dict) and head in value, f"allowance {path} matches nothing"
        del value[head]
        return
    for target in value if head == "*" else [value[head]]:
        drop(target, rest)


def test_every_portal_to_device_fixture_has_a_case() -> None:
    names = {p.name for p in FIXTURES.glob("*.json")}
    assert names - NOT_PAYLOADS == set(CASES)
    assert names >= NOT_PAYLOADS


@pytest.mark.parametrize("name", sorted(CASES))
def test_payload_matches_fixture(name: str) -> None:
    c = CASES[name]()
    ours = json.loads(json.dumps(c.ours))  # must be plain JSON (no UUID/datetime objects)
    theirs = copy.deepcopy(c.theirs)
    if c.exact:
        assert ours == theirs
        assert shape(ours) == shape(theirs)  # 1 == True and 1.0 == 1 in Python, not in serde
        assert not c.only_ours and not c.only_theirs
        return
    for path in c.only_ours:
        drop(ours, path)
    for path in c.only_theirs:
        drop(theirs, path)
    assert shape(ours) == shape(theirs)


# --- focused behaviour --------------------------------------------------------------------------


def test_filters_ports_become_one_entry_each_and_bad_elements_are_skipped() -> None:
    stored = [
        {"protocol": "tcp", "ports": ["80", " 8000 - 8080 ", "nope"]},
        {"protocol": "icmp", "ports": ["1"]},  # ICMP never has ports on the wire
        {"ports": ["1"]},
    ]
    assert wire.filters_view(stored) == [
        {"protocol": "tcp", "port_range_start": 80, "port_range_end": 80},
        {"protocol": "tcp", "port_range_start": 8000, "port_range_end": 8080},
        {"protocol": "icmp"},
    ]
    assert wire.filters_view(None) == []


@pytest.mark.parametrize(
    ("address", "version", "expected"),
    [
        ("*.httpbin", "1.2.0", "*.httpbin"),
        ("*.httpbin", "1.1.9", "?.httpbin"),
        ("**.httpbin", "1.1.9", "*.httpbin"),
        ("app.httpbin", "1.0.0", "app.httpbin"),
        ("a.*.httpbin", "1.1.9", None),
        ("?.httpbin", "1.1.9", None),
        ("*.httpbin", "not-a-version", None),
    ],
)
def test_wildcards_are_adapted_to_old_devices(
    address: str, version: str, expected: str | None
) -> None:
    stored = resource(id=uuid.uuid4(), type="dns", address=address, name="n", ip_stack="dual")
    client_view = client_view_for(stored, version)
    gateway_view = wire.gateway_resource_view_for(stored, version)
    if expected is None:
        assert client_view is None and gateway_view is None
    else:
        assert client_view is not None and gateway_view is not None
        assert client_view["address"] == gateway_view["address"] == expected
    assert stored.address == address  # never mutated


@pytest.mark.parametrize(("version", "shown"), [("1.2.9", False), ("1.3.0", True), ("1.5.4", True)])
def test_internet_resource_needs_1_3(version: str, shown: bool) -> None:
    assert (client_view_for(INTERNET, version) is not None) is shown
    assert (wire.gateway_resource_view_for(INTERNET, version) is not None) is shown


def test_ip_and_cidr_addresses_are_canonical_networks() -> None:
    v6 = resource(id=uuid.uuid4(), type="ip", address="2001:db8::0:1", name="h")
    sloppy = resource(id=uuid.uuid4(), type="cidr", address="192.168.1.1/28", name="c")
    assert wire.client_resource_view(v6)["address"] == "2001:db8::1/128"
    assert wire.client_resource_view(v6)["type"] == "cidr"
    assert wire.gateway_resource_view(sloppy)["address"] == "192.168.1.0/28"
    assert "ip_stack" not in wire.client_resource_view(v6)


def test_upstream_dns_is_normalised_and_unusable_entries_dropped() -> None:
    config = {
        "search_domain": "",
        "clients_upstream_dns": [
            {"protocol": "ip_port", "address": " 8.8.8.8 "},
            {"protocol": "ip_port", "address": "[2001:4860:4860:0::8888]:5353"},
            {"protocol": "dns_over_tls", "address": "1.1.1.1"},
            {"protocol": "ip_port", "address": "not an ip"},
            "junk",
        ],
    }
    interface = wire.interface_view(CLIENT, config)
    assert interface["search_domain"] is None
    assert interface["upstream_dns"] == [
        {"protocol": "ip_port", "address": "8.8.8.8:53"},
        {"protocol": "ip_port", "address": "[2001:4860:4860::8888]:5353"},
    ]
    assert wire.interface_view(CLIENT, None)["upstream_dns"] == []


def test_unix_seconds_are_integers() -> None:
    from datetime import UTC, datetime

    assert wire.unix(datetime(2025, 10, 9, 8, 53, 20, 999999, tzinfo=UTC)) == 1760000000
    assert wire.unix(1760000000.9) == 1760000000
    assert wire.unix(None) is None
    payload = wire.authorize_flow(
        ref="r", resource={}, client=CLIENT, preshared_key=PSK, ice=ICE, expires_at=None
    )
    assert payload["expires_at"] is None  # connlib accepts null here


def test_failure_reasons_only_forbidden_carries_properties() -> None:
    assert "violated_properties" not in wire.flow_creation_failed(HTTPBIN.id, wire.OFFLINE, ["x"])
    assert wire.flow_creation_failed(HTTPBIN.id, wire.FORBIDDEN)["violated_properties"] == []
    assert wire.error_response(wire.NOT_FOUND) == {"reason": "not_found"}
    assert wire.error_response(wire.FORBIDDEN, ("remote_ip",)) == {
        "reason": "forbidden",
        "violated_properties": ["remote_ip"],
    }


def test_signed_ref_fits_authorize_flow() -> None:
    ref = crypto.sign_ref({"client_id": CLIENT.id, "resource_id": HTTPBIN.id})
    payload = wire.authorize_flow(
        ref=ref,
        resource=wire.gateway_resource_view(HTTPBIN),
        client=CLIENT,
        preshared_key=PSK,
        ice=ICE,
        expires_at=EXPIRES,
    )
    assert crypto.verify_ref(json.loads(json.dumps(payload))["ref"]) == {
        "client_id": CLIENT_ID,
        "resource_id": str(HTTPBIN.id),
    }
