"""Deterministic crypto of the device protocol (protocol.md §2.3, §4.3, §5.4). Pure functions.

Every function here must match connlib byte for byte: see
tests/fixtures/portal_crypto_test_vectors.json (TURN credentials live in `gateways.turn`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Protocol

from django.core import signing
from django.core.serializers.json import DjangoJSONEncoder

# Signed correlation refs handed to gateways (authorize_flow / request_connection / allow_access)
# and echoed back in flow_authorized / connection_ready (protocol.md §3.2.4).
REF_SALT: Final = "gateway_reply_ref"
# A gateway answers within seconds; a day only bounds how long a leaked ref stays usable.
REF_MAX_AGE: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class IceCredentials:
    username: str  # 4 characters
    password: str  # 22 characters

    def as_dict(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


@dataclass(frozen=True, slots=True)
class IceCredentialsPair:
    client: IceCredentials
    gateway: IceCredentials


def preshared_key(
    *,
    client_id: uuid.UUID | str,
    client_public_key: str,
    client_psk_base: bytes,
    gateway_id: uuid.UUID | str,
    gateway_public_key: str,
    gateway_psk_base: bytes,
) -> str:
    """WireGuard preshared key of a client/gateway pair: 44-char standard base64 of 32 bytes.

    PBKDF2-HMAC-SHA256 (1 iteration) of both psk bases, salted with the ids and public keys, so
    it is stable for the pair until either side changes its key.
    """
    salt = (
        f"WG_PSK|C_ID:{client_id}|G_ID:{gateway_id}"
        f"|C_PK:{client_public_key}|G_PK:{gateway_public_key}"
    )
    key = hashlib.pbkdf2_hmac(
        "sha256", client_psk_base + gateway_psk_base, salt.encode("utf-8"), 1, 32
    )
    return base64.b64encode(key).decode("ascii")


def ice_credentials(
    *,
    client_id: uuid.UUID | str,
    client_public_key: str,
    gateway_id: uuid.UUID | str,
    gateway_public_key: str,
) -> IceCredentialsPair:
    """ICE username/password for both ends of a client/gateway connection.

    Deterministic on purpose: repeated flows for a pair that is already connected must yield the
    same credentials so connlib keeps the connection.
    """
    material = f"{client_id}:{client_public_key}:{gateway_id}:{gateway_public_key}"
    digest = hashlib.sha256(material.encode("utf-8")).digest()
    h = base64.b32encode(digest).rstrip(b"=").decode("ascii").lower()  # 52 chars
    return IceCredentialsPair(
        client=IceCredentials(username=h[0:4], password=h[4:26]),
        gateway=IceCredentials(username=h[26:30], password=h[30:52]),
    )


class _Device(Protocol):
    id: Any
    public_key: str
    psk_base: Any


def _psk_bytes(value: Any) -> bytes:
    # BinaryField values come back from the database as memoryview.
    return bytes(value) if value is not None else b""


def pair_credentials(client: _Device, gateway: _Device) -> tuple[str, IceCredentialsPair]:
    """Preshared key and ICE credentials of a client/gateway pair (§5.4 steps 5-6), from rows."""
    psk = preshared_key(
        client_id=client.id,
        client_public_key=client.public_key,
        client_psk_base=_psk_bytes(client.psk_base),
        gateway_id=gateway.id,
        gateway_public_key=gateway.public_key,
        gateway_psk_base=_psk_bytes(gateway.psk_base),
    )
    ice = ice_credentials(
        client_id=client.id,
        client_public_key=client.public_key,
        gateway_id=gateway.id,
        gateway_public_key=gateway.public_key,
    )
    return psk, ice


class _RefSerializer:
    """JSON that also accepts UUIDs and datetimes (they come back as strings)."""

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, cls=DjangoJSONEncoder, separators=(",", ":")).encode("latin-1")

    def loads(self, data: bytes) -> Any:
        return json.loads(data.decode("latin-1"))


def sign_ref(data: dict[str, Any]) -> str:
    """An opaque, unforgeable correlation token a gateway echoes back (any server process
    sharing SECRET_KEY can verify it). Signed, not encrypted: put nothing in it the gateway may
    not see (it already receives the PSK and ICE credentials in the same message)."""
    return signing.dumps(data, salt=REF_SALT, serializer=_RefSerializer, compress=True)


def verify_ref(ref: Any, *, max_age: timedelta = REF_MAX_AGE) -> dict[str, Any] | None:
    """The data of a ref made by `sign_ref`, or None if it is not a string, was tampered with,
    is older than `max_age` or does not decode to an object."""
    if not isinstance(ref, str) or not ref:
        return None
    try:
        data = signing.loads(ref, salt=REF_SALT, serializer=_RefSerializer, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError, zlib.error):
        # SignatureExpired is a BadSignature; JSON/unicode errors are ValueErrors.
        return None
    return data if isinstance(data, dict) else None


def external_id(device_id: str) -> str:
    """The `external_id` connlib derives from its configured id (`FIREZONE_ID`).

    A UUID id is sent as hex(sha256(id as configured)); anything else verbatim. Used to build
    expected values in tests and tooling; the portal only stores what devices send.
    """
    try:
        uuid.UUID(device_id)
    except ValueError:
        return device_id
    return hashlib.sha256(device_id.encode("utf-8")).hexdigest()
