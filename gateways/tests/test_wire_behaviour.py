"""Focused behaviour of the device payloads (gateways/wire.py): filters, wildcard adaptation for
old devices, canonical addresses, upstream DNS, timestamps, failure reasons and signed refs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from gateways import crypto, wire
from gateways.tests._wire import (
    CLIENT,
    CLIENT_ID,
    EXPIRES,
    HTTPBIN,
    ICE,
    INTERNET,
    PSK,
    client_view_for,
    resource,
)

# --- focused behaviour --------------------------------------------------------------------------


def test_filters_ports_become_one_entry_each_and_bad_elements_are_skipped() -> None:
    stored: list[dict[str, Any]] = [
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
