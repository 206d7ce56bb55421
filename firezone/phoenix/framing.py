"""Phoenix channel framing: the V1 (JSON object) and V2 (JSON array) serializers.

Real devices speak V1: connlib never sends `vsn`, and Phoenix defaults to `1.0.0`
(protocol.md §1.3). V2 (`vsn=2.0.0`, `[join_ref, ref, topic, event, payload]`) is kept for browser
tooling. Refs are echoed with their JSON type (connlib parses `ref` as an integer and drops a reply
whose ref is a string), so they are never converted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from firezone.jsonvalues import leaves, lone_surrogate

Ref = int | str | None
Status = Literal["ok", "error"]

REPLY = "phx_reply"
JOIN = "phx_join"
LEAVE = "phx_leave"
CLOSE = "phx_close"
ERROR = "phx_error"
HEARTBEAT = "heartbeat"
SOCKET_TOPIC = "phoenix"

_VSN = re.compile(r"(\d+)\.(\d+)\.(\d+)")


class FrameError(ValueError):
    """An inbound frame that is not a well-formed Phoenix message."""


class InvalidPayload(FrameError):
    """A well-formed message whose payload holds a value no device sends and the channel layer
    cannot carry (msgpack): an integer outside the 64-bit range or a string with a lone surrogate
    (a `\\ud800` escape). Answered with an error reply to `message`; nothing else sees it."""

    def __init__(self, message: Message, detail: str) -> None:
        super().__init__(detail)
        self.message = message


class UnsupportedVersion(ValueError):
    """A `vsn` query parameter that matches no serializer (Phoenix refuses the upgrade)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One inbound Phoenix message, whatever the framing."""

    join_ref: Ref
    ref: Ref
    topic: str
    event: str
    payload: Any


def _dumps(value: Any) -> str:
    # ASCII escapes keep a frame valid UTF-8 even if a payload echoes a lone surrogate.
    return json.dumps(value, separators=(",", ":"))


def _loads(text: str | bytes) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise FrameError(f"not JSON: {exc}") from None


# msgpack (the channel layer's serializer) packs integers from -2**63 to 2**64 - 1 only.
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


def _bad_value(value: Any) -> str | None:
    """Why `value` (decoded JSON) cannot cross the channel layer, or None: an out-of-range
    integer or a string (or key) that is not valid UTF-8."""
    for item in leaves(value):
        if isinstance(item, int) and not INT_MIN <= item <= INT_MAX:
            return "integer out of the 64-bit range"
        if isinstance(item, str) and lone_surrogate(item):
            return "string with a lone surrogate"
    return None


def _reject_constant(name: str) -> Any:
    # `NaN`, `Infinity`, `-Infinity` are not JSON (Jason refuses them too).
    raise ValueError(f"{name} is not JSON")


def _check_ref(name: str, value: Any) -> Ref:
    # bool is an int subclass in Python; `true` is not a ref.
    if value is None or isinstance(value, str) or (type(value) is int):
        if _bad_value(value) is not None:
            raise FrameError(f"{name} cannot be carried")
        return value
    raise FrameError(f"{name} must be an integer, a string or null")


def _message(join_ref: Any, ref: Any, topic: Any, event: Any, payload: Any) -> Message:
    if not isinstance(topic, str):
        raise FrameError("topic must be a string")
    if not isinstance(event, str):
        raise FrameError("event must be a string")
    message = Message(
        _check_ref("join_ref", join_ref), _check_ref("ref", ref), topic, event, payload
    )
    if (bad := _bad_value(topic) or _bad_value(event)) is not None:
        raise FrameError(f"topic or event: {bad}")
    if (bad := _bad_value(payload)) is not None:
        raise InvalidPayload(message, bad)
    return message


class V1:
    """`Phoenix.Socket.V1.JSONSerializer`: `{"topic","event","payload","ref"}` objects."""

    vsn = "1.0.0"

    @staticmethod
    def decode(text: str | bytes) -> Message:
        data = _loads(text)
        if not isinstance(data, dict):
            raise FrameError("V1 frame must be a JSON object")
        missing = [k for k in ("topic", "event", "payload", "ref") if k not in data]
        if missing:
            raise FrameError(f"missing key(s): {', '.join(missing)}")
        return _message(
            data.get("join_ref"), data["ref"], data["topic"], data["event"], data["payload"]
        )

    @staticmethod
    def encode_reply(
        topic: str, ref: Ref, status: Status, response: Any, *, join_ref: Ref = None
    ) -> str:
        # V1 never emits join_ref (Jason's key order kept for readability of captures).
        payload = {"response": response, "status": status}
        return _dumps({"event": REPLY, "payload": payload, "ref": ref, "topic": topic})

    @staticmethod
    def encode_push(
        topic: str, event: str, payload: Any, *, join_ref: Ref = None, ref: Ref = None
    ) -> str:
        # Pushes always carry `"ref": null` in V1 (phx_close's ref is the V1-absent join_ref).
        return _dumps({"event": event, "payload": payload, "ref": None, "topic": topic})


class V2:
    """`Phoenix.Socket.V2.JSONSerializer`: `[join_ref, ref, topic, event, payload]` arrays."""

    vsn = "2.0.0"

    @staticmethod
    def decode(text: str | bytes) -> Message:
        data = _loads(text)
        if not isinstance(data, list) or len(data) != 5:
            raise FrameError("V2 frame must be a JSON array of 5 elements")
        return _message(*data)

    @staticmethod
    def encode_reply(
        topic: str, ref: Ref, status: Status, response: Any, *, join_ref: Ref = None
    ) -> str:
        return _dumps([join_ref, ref, topic, REPLY, {"status": status, "response": response}])

    @staticmethod
    def encode_push(
        topic: str, event: str, payload: Any, *, join_ref: Ref = None, ref: Ref = None
    ) -> str:
        return _dumps([join_ref, ref, topic, event, payload])


Serializer = type[V1] | type[V2]


def serializer_for(vsn: str | None) -> Serializer:
    """The serializer for a `vsn` query parameter: `~> 1.0.0` → V1 (also when absent), `~> 2.0.0`
    → V2, anything else raises UnsupportedVersion (Phoenix answers 403)."""
    if vsn is None:
        return V1
    match = _VSN.fullmatch(vsn)
    if match:
        major_minor = (int(match[1]), int(match[2]))
        if major_minor == (1, 0):
            return V1
        if major_minor == (2, 0):
            return V2
    raise UnsupportedVersion(f"unsupported serializer version {vsn!r}")
