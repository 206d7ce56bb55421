"""Device payloads (gateways/wire.py) against the protocol fixtures — scenario 71.

Every portal→device fixture in tests/fixtures is rebuilt from equivalent domain data (the
same ids, keys and stored values) through `gateways.wire` (the cases: _wire_cases_client.py,
_wire_cases_gateway.py). The synthesized fixtures (what the portal sends at the reference commit)
must come out byte-for-byte equal; the samples copied from connlib's own tests are older or
deliberately odd, so for them the JSON *shape* (keys and JSON types) must match once the
documented, per-fixture differences are set aside.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gateways.tests import _wire_cases_client, _wire_cases_gateway  # noqa: F401 (registers the cases)
from gateways.tests._wire import CASES, FIXTURES, Path_

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
