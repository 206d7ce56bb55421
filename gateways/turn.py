"""TURN credentials and the relay view sent to clients and gateways (protocol.md §3.1.2, §4.3).

A relay validates a credential with its in-memory stamp secret, so credentials are bound to one
relay instance: a relay restart (new secret) invalidates them.

    salt     = base64_no_padding(sha256(public_key))          standard alphabet
    username = "<expires_at>:<salt>"
    password = base64_no_padding(sha256("<expires_at>:<secret>:<salt>"))

They must match the relays byte for byte: tests/fixtures/relay_credentials_test_vectors.json and
the `relay_credentials` section of portal_crypto_test_vectors.json. Every credential and its
expiry is computed here.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

# Gateways get relay credentials valid for 90 days, computed at each push (§4.3).
GATEWAY_CREDENTIALS_SECONDS: Final = 90 * 24 * 3600
# Clients get them until their token expires; a token without expiry (protocol.md §9 item 12)
# gets 7 days from each push, rolling like the gateways' 90 days.
NO_EXPIRY_CREDENTIALS_SECONDS: Final = 7 * 24 * 3600


def _b64_sha256(value: str) -> str:
    return base64.b64encode(hashlib.sha256(value.encode()).digest()).decode().rstrip("=")


def username_salt(public_key: str) -> str:
    """The salt of a device: its exact 44-character WireGuard key as sent, hashed."""
    return _b64_sha256(public_key)


def turn_password(expires_at: int, secret: str, salt: str) -> str:
    return _b64_sha256(f"{int(expires_at)}:{secret}:{salt}")


def turn_credentials(public_key: str, secret: str, expires_at: int) -> tuple[str, str]:
    """`(username, password)` for the device with `public_key` on the relay with stamp `secret`."""
    salt = username_salt(public_key)
    return f"{int(expires_at)}:{salt}", turn_password(expires_at, secret, salt)


def gateway_credentials_expiry(now: float | None = None) -> int:
    """`expires_at` of a gateway's relay credentials: now + 90 days, unix seconds."""
    return int(now if now is not None else time.time()) + GATEWAY_CREDENTIALS_SECONDS


def client_credentials_expiry(token_expires_at: datetime | None, now: float | None = None) -> int:
    """`expires_at` of a client's relay credentials: its token's expiry, unix seconds."""
    if token_expires_at is None:
        return int((now if now is not None else time.time()) + NO_EXPIRY_CREDENTIALS_SECONDS)
    return int(token_expires_at.timestamp())


def relay_views(relays: Iterable[Any], public_key: str, expires_at: int) -> list[dict[str, Any]]:
    """One `turn` entry per relay address, IPv4 first, IPv6 as `[addr]:port`; an absent address is
    skipped. `relays` carry `id`, `ipv4`, `ipv6`, `port`, `secret` (`RelayCandidate`)."""
    expires_at = int(expires_at)
    views: list[dict[str, Any]] = []
    for relay in relays:
        username, password = turn_credentials(public_key, relay.secret, expires_at)
        for addr in (
            f"{relay.ipv4}:{relay.port}" if relay.ipv4 else None,
            f"[{relay.ipv6}]:{relay.port}" if relay.ipv6 else None,
        ):
            if addr is not None:
                views.append(
                    {
                        "id": str(relay.id),
                        "type": "turn",
                        "addr": addr,
                        "username": username,
                        "password": password,
                        "expires_at": expires_at,
                    }
                )
    return views
