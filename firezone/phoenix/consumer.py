"""`PhoenixConsumer`: the Phoenix socket + single-channel behaviour shared by the device sockets.

One WebSocket carries one channel topic (`topic_name`: "client", "gateway" or "relay") plus the
socket-level `phoenix` topic for heartbeats (protocol.md §1). A subclass implements the hooks:

* `authenticate(scope)` — the connect step; raise `ConnectRejected(status, body)` to refuse the
  upgrade with a plain-text HTTP response (§2.6). `self.params` holds the form-decoded query.
  Set `self.session_token_id` to have `changes.disconnect_session(token_id)` close the socket.
* `join(topic, payload, message)` — return the ok response (`{}` for devices) or a `JoinError`.
* `after_join()` — runs right after the ok reply has been sent (e.g. the `init` push).
* `handle_in(event, payload, message)` — return a dict (ok reply), an `ErrorReply`, `NO_REPLY`,
  or None for an event it does not handle (→ `unknown_message`).
* `leave(reason)` — the joined channel ended (phx_leave, re-join, close, disconnect).

Guarantees: the join reply precedes every push of the channel; malformed or oversized frames are
dropped with a log (Phoenix would kill the socket; §1.8 allows ignoring them); a crashing join is
answered `join crashed`; any other crash closes this socket only (`phx_close` then close, which
devices recover from promptly, §1.9) and never propagates; a socket that received nothing for
`idle_timeout` seconds is closed (§1.1).

Outages (`firezone.outage`): a connection error of PostgreSQL or Redis is no crash. A connect
is refused `503` (temporary for connlib), a request is answered by `outage_reply` (default: an
error reply `{"reason":"unavailable"}`), a channel-layer message is dropped; the socket stays up
and one line is logged, without a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from firezone import catchup, metrics
from firezone.changes import session_group
from firezone.outage import UNAVAILABLE_BODY, UNAVAILABLE_REASON, describe, is_outage
from firezone.phoenix import rejection
from firezone.phoenix.framing import (
    CLOSE,
    HEARTBEAT,
    JOIN,
    LEAVE,
    SOCKET_TOPIC,
    V1,
    FrameError,
    InvalidPayload,
    Message,
    Ref,
    Serializer,
    Status,
    UnsupportedVersion,
    serializer_for,
)
from firezone.phoenix.rejection import ConnectRejected, deny

logger = logging.getLogger(__name__)

# Loaded by daphne while it imports the ASGI application, before the first upgrade arrives.
rejection.install()

UNMATCHED_TOPIC = {"reason": "unmatched topic"}
UNKNOWN_MESSAGE = {"reason": "unknown_message"}
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
# Phoenix websocket `timeout` of each device socket (§1.1): set as the subclass's idle_timeout.
IDLE_TIMEOUTS = {"client": 307.0, "gateway": 37.0, "relay": 41.0}


class JoinError(Exception):
    """A refused join; returned (or raised) by `join`. Replied as an error with `response`."""

    def __init__(self, reason: str | None = None, *, response: dict[str, Any] | None = None):
        super().__init__(reason or response)
        self.response = response if response is not None else {"reason": reason}


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Returned by `handle_in` for an error reply: `{"status":"error","response":response}`."""

    response: dict[str, Any]

    @classmethod
    def reason(cls, reason: str) -> ErrorReply:
        return cls({"reason": reason})


class _NoReply:
    def __repr__(self) -> str:
        return "NO_REPLY"


NO_REPLY: Any = _NoReply()
"""Returned by `handle_in` for events Phoenix answers with `{:noreply, socket}`."""


def query_params(scope: dict[str, Any]) -> dict[str, str]:
    """Form-decoded query parameters (`+` is a space); a repeated key keeps its last value."""
    raw = scope.get("query_string", b"").decode("latin-1")
    return dict(parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="replace"))


def header(scope: dict[str, Any], name: str) -> str | None:
    """The first value of a request header, or None."""
    key = name.lower().encode("latin-1")
    for k, v in scope.get("headers", ()):
        if k.lower() == key:
            return v.decode("latin-1")
    return None


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Phoenix `check_origin: :conn`: an Origin, when present, must name the requested host.

    Host and port are compared; the scheme is not, because behind a TLS-terminating proxy the
    server cannot know the client's scheme (the port still defaults from the Origin's scheme).
    """
    origin = header(scope, "origin")
    if origin is None:
        return True
    host = header(scope, "host")
    try:
        o = urlsplit(origin)
        h = urlsplit(f"//{host}")
        default = _DEFAULT_PORTS.get(o.scheme.lower())
        return bool(
            host
            and o.hostname
            and default
            and o.hostname == h.hostname
            and (o.port or default) == (h.port or default)
        )
    except ValueError:  # unparsable port
        return False


class PhoenixConsumer(AsyncWebsocketConsumer):
    """Base consumer: Phoenix framing, heartbeat, join/leave, replies, idle timeout."""

    topic_name: ClassVar[str] = ""
    idle_timeout: ClassVar[float] = 60.0
    # daphne itself closes a socket (1009) on messages over 1 MiB; below that we drop and log.
    max_frame_size: ClassVar[int] = 512 * 1024

    serializer: Serializer = V1
    params: dict[str, str]
    session_token_id: Any = None
    joined_topic: str | None = None
    join_ref: Ref = None

    _joining: Message | None = None
    _held: list[str]
    _closing = False
    _last_in = 0.0

    # ---------------------------------------------------------------- subclass hooks

    async def authenticate(self, scope: dict[str, Any]) -> None:
        """Connect step; raise `ConnectRejected` to refuse the upgrade."""

    async def join(self, topic: str, payload: Any, message: Message) -> dict[str, Any] | JoinError:
        raise NotImplementedError

    async def after_join(self) -> None:
        """Runs after the ok join reply was sent (Elixir's `send(self(), :after_join)`)."""

    async def handle_in(self, event: str, payload: Any, message: Message) -> Any:
        """Return a dict (ok), an `ErrorReply`, `NO_REPLY`, or None (unknown_message)."""
        return None

    async def outage_reply(self, event: str, payload: Any, message: Message) -> Any:
        """`handle_in` failed because PostgreSQL or Redis is unreachable: what to answer (same
        return values as `handle_in`). The socket stays up."""
        return ErrorReply.reason(UNAVAILABLE_REASON)

    async def leave(self, reason: str) -> None:
        """The joined channel ended: "leave", "rejoin", "close" or "disconnect"."""

    # ---------------------------------------------------------------- helpers

    async def push(self, event: str, payload: Any) -> None:
        """Push an event on the joined topic (held until the join reply while joining)."""
        if self._joining is not None:
            msg = self._joining
            self._held.append(
                self.serializer.encode_push(msg.topic, event, payload, join_ref=msg.join_ref)
            )
            return
        if self.joined_topic is None or self._closing:
            logger.debug("dropping push %s: no joined topic", event)
            return
        frame = self.serializer.encode_push(
            self.joined_topic, event, payload, join_ref=self.join_ref
        )
        metrics.push_counter(self.topic_name, event).inc()
        await self.send(text_data=frame)

    async def push_encoded(self, event: str, payload: Any, v1_text: str) -> None:
        """`push`, with the V1 text already encoded (identical for every V1 socket of a topic:
        V1 pushes carry no join_ref), so a fan-out encodes each frame once."""
        if self.serializer is not V1 or self._joining is not None:
            await self.push(event, payload)
            return
        if self.joined_topic is None or self._closing:
            return
        metrics.push_counter(self.topic_name, event).inc()
        await self.send(text_data=v1_text)

    async def reply(self, message: Message, status: Status, response: Any) -> None:
        frame = self.serializer.encode_reply(
            message.topic, message.ref, status, response, join_ref=message.join_ref
        )
        await self.send(text_data=frame)

    async def close_channel(self) -> None:
        """Gracefully stop the channel (`phx_close`) and close the WebSocket."""
        await self._close_joined("close")
        await self._close_socket()

    # ---------------------------------------------------------------- connect / disconnect

    async def connect(self) -> None:
        self._held = []
        self.params = query_params(self.scope)
        try:
            # Same order as Phoenix: origin check, serializer negotiation, then the socket.
            if not origin_allowed(self.scope):
                raise ConnectRejected(403, "")
            try:
                self.serializer = serializer_for(self.params.get("vsn"))
            except UnsupportedVersion:
                raise ConnectRejected(403, "") from None
            await self.authenticate(self.scope)
            if self.session_token_id is not None and self.channel_layer is not None:
                group = session_group(self.session_token_id)
                if group not in self.groups:  # `authenticate` may have joined it already
                    await self.channel_layer.group_add(group, self.channel_name)
                    self.groups.append(group)
        except ConnectRejected as rejected:
            await deny(self.base_send, self.scope, rejected.status, rejected.body)
            return
        except Exception as exc:
            if is_outage(exc):  # temporary: connlib retries a 5xx with back-off
                logger.warning("%s connect refused: %s", type(self).__name__, describe(exc))
                await deny(self.base_send, self.scope, 503, UNAVAILABLE_BODY)
                return
            logger.exception("%s connect failed", type(self).__name__)
            await deny(self.base_send, self.scope, 500, "Internal server error")
            return
        await self.accept()
        loop = asyncio.get_running_loop()
        self._last_in = loop.time()
        _IdleSweeper.of(loop).watch(self)
        # The change log is the truth for token deletions too: the catch-up closes this socket
        # if its token's `session.disconnect` never arrives (`firezone.catchup`).
        if not catchup.register_session(self, self._session_revoked, self.session_ends()):
            await self._session_revoked()

    def session_ends(self) -> list[str]:
        """What closes this socket (`session.disconnect`) when the change log shows it
        (`firezone.catchup`): its token's deletion."""
        if self.session_token_id is None:
            return []
        return [catchup.token_end(self.session_token_id)]

    async def _session_revoked(self) -> None:
        await self.dispatch({"type": "session.disconnect"})

    async def disconnect(self, code: int) -> None:
        self._closing = True
        _IdleSweeper.of(asyncio.get_running_loop()).forget(self)
        catchup.unregister_session(self, self.session_ends())
        await self._end_channel("disconnect")

    async def session_disconnect(self, event: dict[str, Any]) -> None:
        """`changes.disconnect_session`: close the WebSocket without any frame (§1.9)."""
        await self._close_socket()

    # ---------------------------------------------------------------- inbound frames

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Safety net for channel-layer handlers of subclasses: a crash closes this socket only.
        try:
            # Channels' own dispatch first hops to the database thread to close stale
            # connections, for every frame and heartbeat (a quarter of an idle server's time in
            # bench/sockets.py). Our database work goes through `database_sync_to_async`, which
            # closes stale connections itself, so the handler is called directly.
            handler = getattr(self, get_handler_name(message), None)
            if handler is None:
                raise ValueError(f"No handler for message type {message['type']}")
            await handler(message)
        except StopConsumer:
            raise
        except Exception as exc:
            kind = message.get("type")
            if is_outage(exc) and kind != "websocket.disconnect":
                # A store is down: this message is lost, the socket is not (its device retries).
                name = type(self).__name__
                logger.warning("%s could not handle %s: %s", name, kind, describe(exc))
                return
            logger.exception("%s crashed handling %s", type(self).__name__, kind)
            if message.get("type") == "websocket.disconnect":
                raise StopConsumer() from None  # the socket is gone: just stop
            await self.close_channel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self._last_in = asyncio.get_running_loop().time()
        if self._closing:
            return
        if text_data is None:
            logger.warning("ignoring a binary frame of %d bytes", len(bytes_data or b""))
            return
        if len(text_data) > self.max_frame_size:
            limit = self.max_frame_size
            logger.warning("ignoring a frame of %d characters (limit %d)", len(text_data), limit)
            return
        try:
            message = self.serializer.decode(text_data)
        except InvalidPayload as exc:
            # Decoded, but nothing may see it (the channel layer could not carry it): refused
            # like any payload the server does not understand, and the socket stays open.
            logger.warning("refusing a %s payload: %s", exc.message.event, exc)
            await self.reply(exc.message, "error", UNKNOWN_MESSAGE)
            return
        except FrameError as exc:
            logger.warning("ignoring a malformed frame: %s", exc)
            return
        await self._route(message)

    async def _route(self, message: Message) -> None:
        if message.topic == SOCKET_TOPIC and message.event == HEARTBEAT:
            await self.reply(message, "ok", {})
        elif message.event == JOIN:
            await self._join(message)
        elif message.topic != self.joined_topic:
            if message.event == LEAVE:
                await self.reply(message, "ok", {})
            else:
                await self.reply(message, "error", UNMATCHED_TOPIC)
        elif message.event == LEAVE:
            await self.reply(message, "ok", {})
            await self._close_joined("leave")
        else:
            await self._handle_in(message)

    async def _join(self, message: Message) -> None:
        if message.topic != self.topic_name:
            await self.reply(message, "error", UNMATCHED_TOPIC)
            return
        if self.joined_topic is not None:
            # Phoenix closes the existing channel of a duplicate join, then joins again.
            await self._close_joined("rejoin")
        self._joining, self._held = message, []
        try:
            result = await self.join(message.topic, message.payload, message)
        except JoinError as exc:
            result = exc
        except Exception:
            logger.exception("%s join crashed", type(self).__name__)
            result = JoinError("join crashed")
        finally:
            self._joining = None
        held, self._held = self._held, []
        if not isinstance(result, JoinError | dict):
            logger.error("%s.join returned %r", type(self).__name__, result)
            result = JoinError("join crashed")
        if isinstance(result, JoinError):
            metrics.REJECTIONS.labels(kind=self.topic_name, status="join").inc()
            await self.reply(message, "error", result.response)
            return
        metrics.JOINS.labels(kind=self.topic_name).inc()
        self.joined_topic, self.join_ref = message.topic, message.join_ref
        await self.reply(message, "ok", result)
        for frame in held:
            await self.send(text_data=frame)
        try:
            await self.after_join()
        except Exception as exc:
            # Closed either way (`phx_close`: the device joins again, its connect answered 503
            # until the store is back); an outage is no bug, so no traceback.
            if is_outage(exc):
                logger.warning("%s after_join: %s", type(self).__name__, describe(exc))
            else:
                logger.exception("%s after_join crashed", type(self).__name__)
            await self.close_channel()

    async def _handle_in(self, message: Message) -> None:
        try:
            result = await self.handle_in(message.event, message.payload, message)
        except Exception as exc:
            if not is_outage(exc):
                logger.exception("%s crashed handling %s", type(self).__name__, message.event)
                await self.close_channel()
                return
            logger.warning(
                "%s could not handle %s: %s", type(self).__name__, message.event, describe(exc)
            )
            try:
                result = await self.outage_reply(message.event, message.payload, message)
            except Exception:
                logger.exception("%s outage reply to %s failed", type(self).__name__, message.event)
                result = ErrorReply.reason(UNAVAILABLE_REASON)
        if result is NO_REPLY:
            return
        if result is None:
            await self.reply(message, "error", UNKNOWN_MESSAGE)
        elif isinstance(result, ErrorReply):
            await self.reply(message, "error", result.response)
        elif isinstance(result, dict):
            await self.reply(message, "ok", result)
        else:
            logger.error("%s.handle_in(%s) returned %r", type(self).__name__, message.event, result)
            await self.close_channel()

    # ---------------------------------------------------------------- internals

    async def _close_joined(self, reason: str) -> None:
        """Push `phx_close` for the joined channel (V2: ref = join_ref) and end it."""
        if self.joined_topic is None:
            return
        frame = self.serializer.encode_push(
            self.joined_topic, CLOSE, {}, join_ref=self.join_ref, ref=self.join_ref
        )
        if not self._closing:
            await self.send(text_data=frame)
        await self._end_channel(reason)

    async def _end_channel(self, reason: str) -> None:
        if self.joined_topic is None:
            return
        self.joined_topic, self.join_ref = None, None
        try:
            await self.leave(reason)
        except Exception:
            logger.exception("%s leave(%s) crashed", type(self).__name__, reason)

    async def _close_socket(self) -> None:
        if not self._closing:
            self._closing = True
            await self.close()

    async def _close_idle(self) -> None:
        logger.info("%s idle for %ss: closing", type(self).__name__, self.idle_timeout)
        await self._close_socket()


class _IdleSweeper:
    """One task per process closes the sockets that received nothing for their `idle_timeout`
    (§1.1), instead of a sleeping task per socket (memory: a task and its frame per socket)."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _IdleSweeper] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sockets: dict[PhoenixConsumer, None] = {}
        self.interval = 1.0
        self.task: asyncio.Task | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _IdleSweeper:
        found = cls._by_loop.get(loop)
        if found is None:
            found = cls._by_loop[loop] = cls(loop)
        return found

    def watch(self, consumer: PhoenixConsumer) -> None:
        self.sockets[consumer] = None
        self.interval = min(self.interval, max(0.05, consumer.idle_timeout / 4))
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._sweep())

    def forget(self, consumer: PhoenixConsumer) -> None:
        self.sockets.pop(consumer, None)

    async def _sweep(self) -> None:
        while self.sockets:
            await asyncio.sleep(self.interval)
            now = self.loop.time()
            idle = [s for s in self.sockets if s._last_in + s.idle_timeout <= now]
            for consumer in idle:
                self.sockets.pop(consumer, None)
                self.loop.create_task(consumer._close_idle())
