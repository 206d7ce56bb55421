"""Device-protocol crypto against the published test vectors (byte for byte)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from gateways import crypto

# connlib's own test vectors (protocol.md §8).
REPO_FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
PORTAL_VECTORS = "portal_crypto_test_vectors.json"
RELAY_VECTORS = "relay_credentials_test_vectors.json"


def load(name: str) -> Any:
    return json.loads((REPO_FIXTURES / name).read_text())


def test_ice_credentials_vector() -> None:
    v = load(PORTAL_VECTORS)["ice_credentials"]
    pair = crypto.ice_credentials(
        client_id=v["client_id"],
        client_public_key=v["client_public_key"],
        gateway_id=v["gateway_id"],
        gateway_public_key=v["gateway_public_key"],
    )
    assert pair.client.as_dict() == v["expected"]["client"]
    assert pair.gateway.as_dict() == v["expected"]["gateway"]


def test_ice_credentials_accept_uuid_objects_and_have_fixed_lengths() -> None:
    v = load(PORTAL_VECTORS)["ice_credentials"]
    pair = crypto.ice_credentials(
        client_id=uuid.UUID(v["client_id"]),
        client_public_key=v["client_public_key"],
        gateway_id=uuid.UUID(v["gateway_id"]),
        gateway_public_key=v["gateway_public_key"],
    )
    assert pair.client.username == v["expected"]["client"]["username"]
    for creds in (pair.client, pair.gateway):
        assert (len(creds.username), len(creds.password)) == (4, 22)


def test_preshared_key_vector() -> None:
    v = load(PORTAL_VECTORS)["preshared_key"]
    psk = crypto.preshared_key(
        client_id=v["client_id"],
        client_public_key=v["client_public_key"],
        client_psk_base=bytes.fromhex(v["client_psk_base_hex"]),
        gateway_id=v["gateway_id"],
        gateway_public_key=v["gateway_public_key"],
        gateway_psk_base=bytes.fromhex(v["gateway_psk_base_hex"]),
    )
    assert psk == v["expected"]
    assert len(psk) == 44


def test_preshared_key_changes_with_a_public_key() -> None:
    v = load(PORTAL_VECTORS)["preshared_key"]
    args = {
        "client_id": v["client_id"],
        "client_public_key": v["client_public_key"],
        "client_psk_base": bytes.fromhex(v["client_psk_base_hex"]),
        "gateway_id": v["gateway_id"],
        "gateway_public_key": v["gateway_public_key"],
        "gateway_psk_base": bytes.fromhex(v["gateway_psk_base_hex"]),
    }
    assert crypto.preshared_key(**{**args, "gateway_public_key": "x" * 43 + "="}) != v["expected"]


def test_external_id_vector() -> None:
    v = load(PORTAL_VECTORS)["external_id"]
    assert crypto.external_id(v["device_id"]) == v["expected"]


def test_external_id_of_a_non_uuid_is_verbatim() -> None:
    assert crypto.external_id("my-laptop") == "my-laptop"


def test_every_vector_section_is_covered() -> None:
    # A new section in the vectors file must get a test here (relay_credentials: test_turn.py).
    assert set(load(PORTAL_VECTORS)) == {
        "ice_credentials",
        "preshared_key",
        "relay_credentials",
        "external_id",
    }


# --- pair credentials from rows, signed refs ----------------------------------------------------


class _Row:
    def __init__(self, id: str | uuid.UUID, public_key: str, psk_base: object) -> None:
        self.id, self.public_key, self.psk_base = id, public_key, psk_base


def test_pair_credentials_from_rows_match_the_vectors() -> None:
    psk_v = load(PORTAL_VECTORS)["preshared_key"]
    ice_v = load(PORTAL_VECTORS)["ice_credentials"]
    # psk_base comes back from PostgreSQL as a memoryview.
    client = _Row(
        psk_v["client_id"],
        psk_v["client_public_key"],
        memoryview(bytes.fromhex(psk_v["client_psk_base_hex"])),
    )
    gateway = _Row(
        uuid.UUID(psk_v["gateway_id"]),
        psk_v["gateway_public_key"],
        bytes.fromhex(psk_v["gateway_psk_base_hex"]),
    )
    psk, ice = crypto.pair_credentials(client, gateway)
    assert psk == psk_v["expected"]
    assert ice.client.as_dict() == ice_v["expected"]["client"]
    assert ice.gateway.as_dict() == ice_v["expected"]["gateway"]


def test_signed_ref_round_trip_with_uuids() -> None:
    data = {"client_id": uuid.uuid4(), "resource_id": "r", "n": 3, "nested": {"a": [1, 2]}}
    ref = crypto.sign_ref(data)
    assert isinstance(ref, str) and ref
    assert crypto.verify_ref(ref) == {**data, "client_id": str(data["client_id"])}


@pytest.mark.parametrize(
    "bad",
    [None, 12, "", "garbage", "SFMyNTY.g2gDbQAAAAhvcGFxdWUtcmVmbgYAnmPnnJIBYgABUYA.5-aLUjF4R"],
)
def test_verify_ref_rejects_foreign_values(bad: object) -> None:
    assert crypto.verify_ref(bad) is None


def test_verify_ref_rejects_tampering_other_salts_and_old_refs() -> None:
    from datetime import timedelta

    from django.core import signing

    ref = crypto.sign_ref({"flow": "x"})
    head, _, tail = ref.rpartition(":")
    assert crypto.verify_ref(f"{head}:{'A' if tail[0] != 'A' else 'B'}{tail[1:]}") is None
    assert crypto.verify_ref(signing.dumps({"flow": "x"}, salt="other")) is None
    assert crypto.verify_ref(signing.dumps(["not", "a", "dict"], salt=crypto.REF_SALT)) is None
    assert crypto.verify_ref(ref, max_age=timedelta(seconds=-1)) is None
