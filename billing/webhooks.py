"""Stripe webhook verification (billing_sync_jobs.md §1.6): pure functions, no I/O.

`verify_signature` checks a `Stripe-Signature` header against the raw body, in the original's
order and with its plain-text 400 bodies; `parse_event` decodes the body into an event. Both
raise `WebhookRejected(message)`; the view answers `400 <message>`.

Deliberate differences from the original (its 500s, §1.6 and §7):

* several `Stripe-Signature` headers: the server joins them with commas (Django's ASGI request
  does), so they are read as one list: the first `t` wins, every `v1` is a candidate. A valid
  request therefore still verifies and anything else is a 400, never a 500;
* a non-integer `t` → `400 Bad Request: invalid timestamp`;
* a body that is not JSON → `400 Bad Request: malformed JSON`; JSON that is not a Stripe event
  (`"object": "event"`, an `evt_` id, a type, an integer `created`, an object under `data`,
  a `cus_` customer or none) → `400 Bad Request: not a Stripe event`. Nothing is written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

TOLERANCE_SECONDS = 300

MSG_MISSING_HEADER = "Bad Request: missing signature header"
MSG_MISSING_TIMESTAMP = "Bad Request: missing timestamp"
MSG_INVALID_TIMESTAMP = "Bad Request: invalid timestamp"
MSG_MISSING_SIGNATURES = "Bad Request: missing signatures"
MSG_EXPIRED = "Bad Request: expired signature"
MSG_INVALID_SIGNATURE = "Bad Request: invalid signature"
MSG_MALFORMED_JSON = "Bad Request: malformed JSON"
MSG_NOT_AN_EVENT = "Bad Request: not a Stripe event"


class WebhookRejected(Exception):
    """The request is refused with `400 <message>` (plain text)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_signature_header(header: str) -> tuple[str | None, list[str]]:
    """(the first `t` value, every `v1` value). Other schemes and malformed parts are ignored."""
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None:
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    return timestamp, signatures


def compute_signature(*, secret: str, timestamp: int | str, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of `"<t>.<raw body>"`, keyed with the secret string as is."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(*, header: str | None, body: bytes, secret: str, now: int) -> int:
    """Check the header against the body at unix time `now`; returns the signed timestamp.
    Future timestamps are accepted, like the original."""
    if header is None:
        raise WebhookRejected(MSG_MISSING_HEADER)
    raw_timestamp, signatures = parse_signature_header(header)
    if raw_timestamp is None:
        raise WebhookRejected(MSG_MISSING_TIMESTAMP)
    if not signatures:
        raise WebhookRejected(MSG_MISSING_SIGNATURES)
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise WebhookRejected(MSG_INVALID_TIMESTAMP) from None
    if timestamp < now - TOLERANCE_SECONDS:
        raise WebhookRejected(MSG_EXPIRED)
    expected = compute_signature(secret=secret, timestamp=raw_timestamp, body=body)
    # Compare with every candidate (no early exit that would tell which one matched).
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise WebhookRejected(MSG_INVALID_SIGNATURE)
    return timestamp


def parse_event(body: bytes) -> dict[str, Any]:
    """The event of a verified body, checked to have what the pipeline (§1.7) reads."""
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(MSG_MALFORMED_JSON) from None
    if not _is_event(event):
        raise WebhookRejected(MSG_NOT_AN_EVENT)
    return event


def _is_event(event: Any) -> bool:
    if not isinstance(event, dict) or event.get("object") != "event":
        return False
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    data = event.get("data")
    if not (isinstance(event_id, str) and event_id.startswith("evt_") and len(event_id) <= 255):
        return False
    if not (isinstance(event_type, str) and 0 < len(event_type) <= 255):
        return False
    if not isinstance(created, int) or isinstance(created, bool):
        return False
    if not isinstance(event.get("livemode", False), bool):
        return False
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return False
    customer = event_customer_id(event)
    return customer is None or (
        isinstance(customer, str) and customer.startswith("cus_") and len(customer) <= 255
    )


def event_customer_id(event: Mapping[str, Any]) -> Any:
    """§1.7 step 1: the object's `id` for a customer, else its `customer` (may be None)."""
    obj = event["data"]["object"]
    return obj.get("id") if obj.get("object") == "customer" else obj.get("customer")
