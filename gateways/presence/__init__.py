"""Who is online right now (protocol.md §4.1): a Redis registry shared by every daphne process.

Elixir uses Phoenix.Presence, whose entries vanish when the channel process dies. Here an entry
belongs to a *connection* (`conn_id`, e.g. the consumer's channel name) and lives while that
connection's deadline is in the future. Each process refreshes the deadlines of all its live
connections in one Redis call per tick (`PRESENCE_REFRESH_SECONDS`, default 15 s), so a crashed
process's entries expire after `PRESENCE_TTL_SECONDS` (default 45 s) and `sweep()` (Celery beat,
every 10 s) removes them and publishes their leaves. Nothing polls per socket.

Redis layout (`PRESENCE_KEY_PREFIX`, default "presence"; tests use a prefix of their own):

    <p>:conns        sorted set   conn_id -> deadline (ms, Redis clock)
    <p>:t:<topic>    hash         "<key>|<conn_id>" -> meta JSON   (one per entry)
    <p>:c:<conn_id>  hash         "<topic>\\n<key>" -> "1"          (entries of a connection)

Every mutation is one Lua script, so two processes (or two sweepers) never both report the same
leave. Deadlines use the Redis server clock, so clock skew between hosts does not matter.

A key is online while at least one entry for it exists (several connections of one device give
several entries). Every added/removed entry is published to `group_name(topic)` through the
channel layer as `{"type": "presence.diff", "topic", "joins": {key: meta}, "leaves": {key: meta}}`
(handler `presence_diff`); deciding whether a leave was the *last* one is the receiver's business
(`list_presences`). Diffs go only to groups somebody joined, so join the group *before* reading
the presence you will follow.

Topics are the strings of §4.1 without Elixir's `presences:` prefix (`topics`).

Modules: `topics` (names), `scripts` (the Lua), `connections` (Redis clients and settings),
`registry` (track, untrack, list, sweep, publishing diffs), `flight` (shared reads), `tracker`
(the entries of one socket, refreshed per process). Callers import from this package.
"""

from __future__ import annotations

from gateways.presence.connections import aclose
from gateways.presence.flight import coalesced
from gateways.presence.registry import (
    DIFF_TYPE,
    list_presences,
    list_presences_many,
    list_presences_many_sync,
    list_presences_sync,
    sweep,
    sweep_sync,
    track,
    track_many,
    untrack,
    untrack_conn,
)
from gateways.presence.topics import (
    GLOBAL_RELAYS,
    account_clients_topic,
    account_gateways_topic,
    account_relays_topic,
    actor_clients_topic,
    group_gateways_topic,
    group_name,
    group_relays_topic,
    relay_topic,
)
from gateways.presence.tracker import PresenceTracker, refresh, refresh_all

__all__ = [
    "DIFF_TYPE",
    "GLOBAL_RELAYS",
    "PresenceTracker",
    "account_clients_topic",
    "account_gateways_topic",
    "account_relays_topic",
    "aclose",
    "actor_clients_topic",
    "coalesced",
    "group_gateways_topic",
    "group_name",
    "group_relays_topic",
    "list_presences",
    "list_presences_many",
    "list_presences_many_sync",
    "list_presences_sync",
    "refresh",
    "refresh_all",
    "relay_topic",
    "sweep",
    "sweep_sync",
    "track",
    "track_many",
    "untrack",
    "untrack_conn",
]
