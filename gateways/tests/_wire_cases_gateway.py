"""Fixture cases of the gateway and relay channels: each rebuilds one portal→gateway or
portal→relay fixture of tests/fixtures from domain data through `gateways.wire`.

Importing this module registers the cases in `gateways.tests._wire.CASES`.
"""

from __future__ import annotations

import copy
import functools
from types import SimpleNamespace
from typing import Any

from gateways import wire
from gateways.tests._wire import (
    CLIENT,
    CLIENT_ID,
    EXPIRES,
    GATEWAY,
    HTTPBIN,
    ICE,
    INTERNET,
    MYCORP,
    PSK,
    REF,
    SINGLE_HOST,
    Case,
    case,
    ice_from,
    load,
    payload_of,
    resource,
)

# Gateway channel ----------------------------------------------------------------------------------


def _view_for(resource: Any, version: str) -> dict[str, Any]:
    """The gateway's view of a resource that this version can be sent."""
    view = wire.gateway_resource_view_for(resource, version)
    assert view is not None
    return view


def _disconnect_case(name: str) -> Case:
    return Case(wire.disconnect_token_expired(), payload_of(name))


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
            resource=_view_for(HTTPBIN, "1.4.17"),
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
            resource=_view_for(INTERNET, "1.4.17"),
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
            resource=_view_for(MYCORP, "1.3.2"),
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
            resource=_view_for(stored, "1.1.3"),
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
            resource=_view_for(HTTPBIN, "1.3.2"),
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
        wire.resource_updated(_view_for(stored, "1.4.17")),
        payload_of("gateway_resource_updated.json"),
    )


@case("gateway_resource_updated_cidr.synthesized.json")
def _resource_updated_cidr() -> Case:
    from dataclasses import replace

    updated = replace(SINGLE_HOST, filters=[{"protocol": "tcp", "ports": ["22"]}])
    return Case(
        wire.resource_updated(_view_for(updated, "1.4.17")),
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
    stored: list[dict[str, Any]] = [
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
    case(_name)(functools.partial(_gateway_ice_case, _name))

# Relay channel / disconnects ----------------------------------------------------------------------

case("relay_init.synthesized.json")(
    lambda: Case(wire.relay_init(), payload_of("relay_init.synthesized.json"))
)

for _name in (
    "relay_disconnect_token_expired.synthesized.json",
    "phoenix_disconnect_token_expired.json",
):
    case(_name)(functools.partial(_disconnect_case, _name))
