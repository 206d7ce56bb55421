"""Phoenix codecs (V1/V2), connect helpers and the denial-response plumbing, without a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import RequestFactory

from firezone.phoenix import rejection
from firezone.phoenix.consumer import origin_allowed, query_params
from firezone.phoenix.framing import (
    V1,
    V2,
    FrameError,
    InvalidPayload,
    Message,
    UnsupportedVersion,
    serializer_for,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


# ------------------------------------------------------------------ serializer choice


@pytest.mark.parametrize(
    ("vsn", "expected"),
    [(None, V1), ("1.0.0", V1), ("1.0.7", V1), ("2.0.0", V2), ("2.0.3", V2)],
)
def test_serializer_for_vsn(vsn, expected) -> None:
    assert serializer_for(vsn) is expected


@pytest.mark.parametrize("vsn", ["", "1", "1.0", "1.1.0", "2.1.0", "3.0.0", "v1.0.0", "1.0.0 "])
def test_serializer_for_unsupported_vsn(vsn) -> None:
    with pytest.raises(UnsupportedVersion):
        serializer_for(vsn)


# ------------------------------------------------------------------ V1 decode


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("phoenix_phx_join_request.json", Message(None, 1, "test", "phx_join", None)),
        ("phoenix_heartbeat.synthesized.json", Message(None, 21, "phoenix", "heartbeat", {})),
        (
            "phoenix_inbound_message.json",
            Message(None, None, "room:lobby", "shout", {"hello": "world"}),
        ),
        ("client_phx_join.synthesized.json", Message(None, 0, "client", "phx_join", None)),
    ],
)
def test_v1_decodes_device_frames(name, expected) -> None:
    assert V1.decode(json.dumps(fixture(name))) == expected


def test_v1_decode_keeps_ref_types_and_optional_join_ref() -> None:
    msg = V1.decode('{"topic":"t","event":"e","payload":[1],"ref":"7","join_ref":"3"}')
    assert msg == Message("3", "7", "t", "e", [1])
    assert V1.decode(b'{"topic":"t","event":"e","payload":"x","ref":7}').ref == 7


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        '{"topic":"client","event":"x","payload":{},"ref":1',  # truncated
        "not json",
        "\udcff",
        '[null,1,"client","phx_join",{}]',  # V2 array on a V1 socket
        '"string"',
        "42",
        "null",
        '{"event":"x","payload":{},"ref":1}',  # missing topic
        '{"topic":"t","payload":{},"ref":1}',  # missing event
        '{"topic":"t","event":"x","ref":1}',  # missing payload
        '{"topic":"t","event":"x","payload":{}}',  # missing ref
        '{"topic":1,"event":"x","payload":{},"ref":1}',
        '{"topic":"t","event":null,"payload":{},"ref":1}',
        '{"topic":"t","event":"x","payload":{},"ref":1.5}',
        '{"topic":"t","event":"x","payload":{},"ref":true}',
        '{"topic":"t","event":"x","payload":{},"ref":[1]}',
        '{"topic":"t","event":"x","payload":{},"ref":1,"join_ref":{}}',
        "[" * 100_000,  # recursion
    ],
)
def test_v1_decode_rejects_malformed_frames(text) -> None:
    with pytest.raises(FrameError):
        V1.decode(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"topic":"t","event":"x","payload":{},"ref":18446744073709551616}',
        '{"topic":"t","event":"x","payload":{},"ref":1,"join_ref":-9223372036854775809}',
        '{"topic":"t","event":"x","payload":{},"ref":"\\ud800"}',
        '{"topic":"\\udfff","event":"x","payload":{},"ref":1}',
        '{"topic":"t","event":"x","payload":{"a":NaN},"ref":1}',
        '{"topic":"t","event":"x","payload":[Infinity],"ref":1}',
    ],
)
def test_v1_decode_rejects_refs_and_constants_nothing_can_carry(text) -> None:
    with pytest.raises(FrameError):
        V1.decode(text)


@pytest.mark.parametrize(
    "payload",
    [
        '{"candidates":["a"],"gateway_ids":[18446744073709551616]}',
        '{"a":[{"b":[-9223372036854775809]}]}',
        '{"a":"\\ud800"}',
        '{"\\udc00":1}',
    ],
)
def test_v1_decode_refuses_payloads_the_channel_layer_cannot_carry(payload) -> None:
    """An integer outside msgpack's 64-bit range or a lone surrogate anywhere in a payload: the
    decoded message comes with the error, so the consumer can answer it (issue 17)."""
    text = f'{{"topic":"client","event":"broadcast_ice_candidates","payload":{payload},"ref":7}}'
    with pytest.raises(InvalidPayload) as exc:
        V1.decode(text)
    assert (exc.value.message.topic, exc.value.message.ref) == ("client", 7)
    with pytest.raises(InvalidPayload):
        V2.decode(f'[null,7,"client","x",{payload}]')


def test_v1_decode_keeps_the_64_bit_range_and_non_ascii_text() -> None:
    payload = {"a": [2**64 - 1, -(2**63)], "b": "Zoë ✓ 𝄞", "c": 1.5}
    message = V1.decode(json.dumps({"topic": "t", "event": "x", "payload": payload, "ref": 1}))
    assert message.payload == payload


# ------------------------------------------------------------------ V1 encode


@pytest.mark.parametrize(
    ("name", "status", "response"),
    [
        ("phoenix_heartbeat_reply.synthesized.json", "ok", {}),
        ("phoenix_reply_ok_empty.synthesized.json", "ok", {}),
        ("phoenix_phx_join_reply_ok.json", "ok", {}),
        (
            "phoenix_reply_error_unknown_message.synthesized.json",
            "error",
            {"reason": "unknown_message"},
        ),
        (
            "phoenix_reply_error_unmatched_topic_real.synthesized.json",
            "error",
            {"reason": "unmatched topic"},
        ),
        ("phoenix_reply_error_invalid_ref.synthesized.json", "error", {"reason": "invalid_ref"}),
    ],
)
def test_v1_encode_reply_matches_fixtures(name, status, response) -> None:
    expected = fixture(name)
    frame = V1.encode_reply(expected["topic"], expected["ref"], status, response, join_ref=5)
    assert json.loads(frame) == expected  # join_ref is never emitted by V1


def test_v1_reply_is_compact_in_jason_order_with_integer_ref() -> None:
    assert V1.encode_reply("client", 0, "ok", {}) == (
        '{"event":"phx_reply","payload":{"response":{},"status":"ok"},"ref":0,"topic":"client"}'
    )
    assert json.loads(V1.encode_reply("client", "12", "ok", {}))["ref"] == "12"


@pytest.mark.parametrize(
    ("name"),
    [
        "phoenix_phx_close.json",
        "phoenix_phx_close_real.synthesized.json",
        "phoenix_phx_error.synthesized.json",
        "phoenix_disconnect_token_expired.json",
        "client_resource_deleted.synthesized.json",
        "relay_init.synthesized.json",
    ],
)
def test_v1_encode_push_matches_fixtures(name) -> None:
    expected = fixture(name)
    frame = V1.encode_push(
        expected["topic"], expected["event"], expected["payload"], join_ref=3, ref=3
    )
    assert json.loads(frame) == expected
    assert "join_ref" not in json.loads(frame)


def test_v1_encode_stays_ascii() -> None:
    frame = V1.encode_push("client", "init", {"name": "Zoë \ud800"})
    frame.encode("ascii")
    assert json.loads(frame)["payload"] == {"name": "Zoë \ud800"}


# ------------------------------------------------------------------ V2


def test_v2_decode() -> None:
    assert V2.decode('["1","2","client","phx_join",{}]') == Message(
        "1", "2", "client", "phx_join", {}
    )
    assert V2.decode('[null,5,"phoenix","heartbeat",{}]') == Message(
        None, 5, "phoenix", "heartbeat", {}
    )


@pytest.mark.parametrize(
    "text",
    [
        "{",
        '{"topic":"t","event":"x","payload":{},"ref":1}',  # V1 object on a V2 socket
        '[null,1,"client","x"]',
        '[null,1,"client","x",{},6]',
        '[null,1,2,"x",{}]',
        '[null,1,"client",false,{}]',
        '[{},1,"client","x",{}]',
        '[null,1.0,"client","x",{}]',
    ],
)
def test_v2_decode_rejects_malformed_frames(text) -> None:
    with pytest.raises(FrameError):
        V2.decode(text)


def test_v2_encode() -> None:
    assert json.loads(V2.encode_reply("client", "2", "ok", {}, join_ref="1")) == [
        "1",
        "2",
        "client",
        "phx_reply",
        {"status": "ok", "response": {}},
    ]
    assert json.loads(V2.encode_push("client", "init", {"a": 1}, join_ref="1")) == [
        "1",
        None,
        "client",
        "init",
        {"a": 1},
    ]
    assert json.loads(V2.encode_push("client", "phx_close", {}, join_ref="1", ref="1")) == [
        "1",
        "1",
        "client",
        "phx_close",
        {},
    ]


# ------------------------------------------------------------------ connect helpers


def test_query_params_are_form_decoded() -> None:
    scope = {"query_string": b"token=.SFMy%2Ba+b&name=&public_key=a%3D&x=1&x=2"}
    assert query_params(scope) == {"token": ".SFMy+a b", "name": "", "public_key": "a=", "x": "2"}
    assert query_params({}) == {}


def _scope(**headers: str) -> dict:
    return {"headers": [(k.encode(), v.encode()) for k, v in headers.items()]}


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"host": "api.example.com"}, True),  # connlib sends no Origin
        ({"host": "api.example.com", "origin": "https://api.example.com"}, True),
        ({"host": "api.example.com:443", "origin": "https://api.example.com"}, True),
        ({"host": "API.example.com", "origin": "http://api.example.com"}, True),
        ({"host": "localhost:8000", "origin": "http://localhost:8000"}, True),
        ({"host": "localhost:8000", "origin": "http://localhost:9000"}, False),
        ({"host": "localhost:8000", "origin": "http://localhost"}, False),
        ({"host": "api.example.com", "origin": "https://evil.example.com"}, False),
        ({"host": "api.example.com", "origin": "null"}, False),
        ({"host": "api.example.com", "origin": "file:///x"}, False),
        ({"host": "api.example.com", "origin": "https://api.example.com:99999"}, False),
        ({"origin": "https://api.example.com"}, False),
    ],
)
def test_origin_check(headers, allowed) -> None:
    assert origin_allowed(_scope(**headers)) is allowed


# ------------------------------------------------------------------ rejection plumbing


def test_http_response_bytes() -> None:
    body = b"Missing token"
    raw = rejection._http_response(401, [(b"content-type", b"text/plain")], body)
    assert raw == (
        b"HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\ncontent-length: 13\r\n"
        b"connection: close\r\n\r\nMissing token"
    )
    assert rejection._http_response(599, [], b"").startswith(b"HTTP/1.1 599 \r\n")
    with pytest.raises(ValueError, match="CR or LF"):
        rejection._http_response(401, [(b"x", b"a\r\nset-cookie: 1")], b"")


async def test_deny_uses_the_extension_when_advertised() -> None:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"extensions": {"websocket.http.response": {}}}
    await rejection.deny(send, scope, 422, "Invalid or missing connection parameters: é\n")
    body = "Invalid or missing connection parameters: é\n".encode()
    assert sent == [
        {
            "type": "websocket.http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        },
        {"type": "websocket.http.response.body", "body": body, "more_body": False},
    ]


async def test_deny_falls_back_to_close_without_the_extension() -> None:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await rejection.deny(send, {"extensions": None}, 401, "Missing token")
    assert sent == [{"type": "websocket.close"}]


def test_install_points_daphne_at_the_denial_protocol() -> None:
    from daphne import ws_protocol

    import firezone.phoenix.consumer  # noqa: F401  (installs on import)

    assert ws_protocol.WebSocketFactory.protocol is rejection.DenialResponseWebSocketProtocol
    assert rejection.install() is True  # idempotent


def test_websocket_only_view_is_an_empty_400() -> None:
    response = rejection.websocket_only(RequestFactory().get("/client/websocket"))
    assert response.status_code == 400
    assert response.content == b""
