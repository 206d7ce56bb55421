"""The presence registry: track and untrack entries, list who is online, sweep the entries of
dead connections, and publish every change as a diff to the topic's group."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from typing import Any, Final

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from gateways.presence.connections import BATCH, key_prefix, loop_state, sync_client, ttl_ms
from gateways.presence.flight import coalesce
from gateways.presence.topics import group_name

logger = logging.getLogger(__name__)

DIFF_TYPE: Final = "presence.diff"
_PUBLISH_CONCURRENCY: Final = 16


def _check(topic: str, key: str, conn_id: str | None = None) -> None:
    # '|' separates key and conn in a field, '\n' topic and key.
    if "\n" in topic or "|" in key or "\n" in key or (conn_id is not None and "|" in conn_id):
        raise ValueError("presence topic/key/conn_id contain a reserved character")


def _with_online_at(meta: dict) -> dict:
    # Always a copy: the tracker keeps it for re-registration, the caller may reuse its dict.
    return {"online_at": int(time.time()), **meta}


def _dump(meta: dict) -> str:
    return json.dumps(meta, separators=(",", ":"), sort_keys=True)


def _diff(topic: str, joins: dict | None = None, leaves: dict | None = None) -> dict:
    return {"type": DIFF_TYPE, "topic": topic, "joins": joins or {}, "leaves": leaves or {}}


def _leave_messages(flat: list) -> list[dict]:
    """Diff messages for (topic, key, meta) triples: one per topic, or more when one key lost
    several entries at once (a diff maps a key to one meta)."""
    by_topic: dict[str, list[dict]] = {}
    for i in range(0, len(flat), 3):
        topic, key, meta = flat[i], flat[i + 1], json.loads(flat[i + 2])
        messages = by_topic.setdefault(topic, [])
        for message in messages:
            if key not in message["leaves"]:
                message["leaves"][key] = meta
                break
        else:
            messages.append(_diff(topic, leaves={key: meta}))
    return [m for messages in by_topic.values() for m in messages]


def _layer_group_keys(layer: Any, messages: list[dict]) -> list[str] | None:
    """The channel layer's Redis keys of the messages' groups, when the layer keeps its groups
    in our Redis (channels-redis, one host = REDIS_URL); None when we cannot tell."""
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(layer, RedisChannelLayer) or len(layer.hosts) != 1:
        return None
    if layer.hosts[0].get("address") != settings.REDIS_URL:
        return None
    return [layer._group_key(group_name(m["topic"])).decode() for m in messages]


async def _send_all(layer: Any, messages: list[dict]) -> None:
    async def send(message: dict) -> None:
        try:
            await layer.group_send(group_name(message["topic"]), message)
        except Exception:  # a lost diff must not break the socket that caused it
            logger.exception("presence: publishing a diff of %s failed", message["topic"])

    # A few at a time: concurrent round trips without opening a connection per message.
    for i in range(0, len(messages), _PUBLISH_CONCURRENCY):
        await asyncio.gather(*(send(m) for m in messages[i : i + _PUBLISH_CONCURRENCY]))


async def _publish(messages: Iterable[dict]) -> None:
    """group_send each diff, skipping groups nobody joined (most presence topics, most of the
    time: a channel-layer group_send costs two round trips even when empty). A subscriber that
    joins the group before reading presence misses nothing: a write either sees its group or
    happened before its read."""
    messages = list(messages)
    if not messages:
        return
    layer = get_channel_layer()
    keys = _layer_group_keys(layer, messages)
    if keys is not None:
        try:
            async with loop_state().client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.exists(key)
                listened = await pipe.execute()
            messages = [m for m, flag in zip(messages, listened, strict=True) if flag]
        except Exception:
            logger.exception("presence: checking diff listeners failed; sending to all")
    await _send_all(layer, messages)


def _publish_sync(messages: list[dict]) -> None:
    if not messages:
        return
    layer = get_channel_layer()
    keys = _layer_group_keys(layer, messages)
    if keys is not None:
        client, _scripts = sync_client()
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        messages = [m for m, flag in zip(messages, pipe.execute(), strict=True) if flag]
    if messages:
        async_to_sync(_send_all)(layer, messages)


async def track(topic: str, key: str, conn_id: str, meta: dict) -> None:
    """Register (or update) the entry (topic, key, conn_id). Nothing refreshes it: use a
    `PresenceTracker` for entries that must outlive `PRESENCE_TTL_SECONDS`."""
    await track_many(conn_id, [(topic, key, meta)])


async def track_many(conn_id: str, entries: Iterable[tuple[str, str, dict]]) -> list[dict]:
    """Register several entries of one connection in one Redis call (a relay has four).
    Returns the metas as stored (with `online_at`). A re-tracked entry is an update: its diff
    has the old meta in `leaves` and the new one in `joins`."""
    entries = [(topic, key, _with_online_at(meta)) for topic, key, meta in entries]
    if not entries:
        return []
    args: list[Any] = [key_prefix(), conn_id, ttl_ms()]
    for topic, key, meta in entries:
        _check(topic, key, conn_id)
        args += [topic, key, _dump(meta)]
    olds = await loop_state().scripts["track"](args=args)
    await _publish(
        _diff(topic, joins={key: meta}, leaves={key: json.loads(old)} if old else None)
        for (topic, key, meta), old in zip(entries, olds, strict=True)
    )
    return [meta for _topic, _key, meta in entries]


async def untrack(topic: str, key: str, conn_id: str) -> None:
    _check(topic, key, conn_id)
    old = await loop_state().scripts["untrack"](args=[key_prefix(), topic, key, conn_id])
    if old:
        await _publish([_diff(topic, leaves={key: json.loads(old)})])


async def untrack_conn(conn_id: str) -> None:
    """Remove every entry of a connection (what `PresenceTracker.untrack_all` does)."""
    flat = await loop_state().scripts["untrack_all"](args=[key_prefix(), conn_id])
    await _publish(_leave_messages(flat))


def _parse_lists(topics: list[str], raw: list) -> dict[str, dict[str, list[dict]]]:
    result: dict[str, dict[str, list[dict]]] = {}
    for topic, flat in zip(topics, raw, strict=True):
        presences: dict[str, list[dict]] = {}
        for i in range(0, len(flat), 2):
            presences.setdefault(flat[i], []).append(json.loads(flat[i + 1]))
        for metas in presences.values():
            metas.sort(key=lambda m: (m.get("online_at") or 0, _dump(m)))
        result[topic] = presences
    return result


async def list_presences_many(topics: Iterable[str]) -> dict[str, dict[str, list[dict]]]:
    """`{topic: {key: [meta, ...]}}` in one Redis call. Concurrent identical calls in this
    process share reads (a relay leave makes every watching socket ask at once), see `_Flight`."""
    topics = list(dict.fromkeys(topics))
    if not topics:
        return {}
    state = loop_state()
    flight = ("list", key_prefix(), tuple(topics))
    prefix = key_prefix()
    raw = await coalesce(state, flight, lambda: state.scripts["list"](args=[prefix, *topics]))
    return _parse_lists(topics, raw)


async def list_presences(topic: str) -> dict[str, list[dict]]:
    """`{key: [meta, ...]}`: one meta per live connection, oldest `online_at` first."""
    return (await list_presences_many([topic]))[topic]


def list_presences_many_sync(topics: Iterable[str]) -> dict[str, dict[str, list[dict]]]:
    topics = list(dict.fromkeys(topics))
    if not topics:
        return {}
    _client, scripts = sync_client()
    return _parse_lists(topics, scripts["list"](args=[key_prefix(), *topics]))


def list_presences_sync(topic: str) -> dict[str, list[dict]]:
    return list_presences_many_sync([topic])[topic]


async def sweep() -> int:
    """Remove the entries of connections whose deadline passed and publish their leaves.
    Returns the number of dead connections removed. Safe to run from several places at once."""
    scripts, removed = loop_state().scripts, 0
    while True:
        out = await scripts["sweep"](args=[key_prefix(), BATCH])
        removed += out[0]
        await _publish(_leave_messages(out[1:]))
        if out[0] < BATCH:
            return removed


def sweep_sync() -> int:
    """`sweep()` for sync callers (the Celery task)."""
    _client, scripts = sync_client()
    removed = 0
    while True:
        out = scripts["sweep"](args=[key_prefix(), BATCH])
        removed += out[0]
        _publish_sync(_leave_messages(out[1:]))
        if out[0] < BATCH:
            return removed
