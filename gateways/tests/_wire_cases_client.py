"""Fixture cases of the client channel (and the legacy client replies): each rebuilds one
portal→client fixture of tests/fixtures from domain data through `gateways.wire`.

Importing this module registers the cases in `gateways.tests._wire.CASES`.
"""

from __future__ import annotations

import copy
import functools
import uuid
from types import SimpleNamespace
from typing import Any

from gateways import wire
from gateways.tests._wire import (
    ACCOUNT_CONFIG,
    CLIENT,
    GATEWAY,
    HTTPBIN,
    ICE,
    INTERNET,
    MYCORP,
    PSK,
    SINGLE_HOST,
    TEST_SITE,
    Case,
    case,
    client_view_for,
    ice_from,
    load,
    payload_of,
    resource,
)
from resources.access import SiteRef

# Client channel -----------------------------------------------------------------------------------


def _client_view(stored: Any, version: str) -> dict[str, Any]:
    view = client_view_for(stored, version)
    assert view is not None
    return view


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
    row: dict[str, Any] = {
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
    case(_name)(functools.partial(_dns_sample_case, _name, _stack))

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
        wire.resource_created_or_updated(_client_view(INTERNET, "1.5.4")),
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
    case(_name)(functools.partial(_client_ice_case, _name))


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
    case(_name)(functools.partial(_relays_presence_case, _name))

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
