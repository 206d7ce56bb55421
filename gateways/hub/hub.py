"""`AccountHub`: the access model of one account, shared by every device socket of it in this
process, and the one subscriber of the account's device stream (`firezone.stream`).

    service write ─ on_commit ─▶ one stream message per transaction and account
                                     │  (one Redis delivery per server process)
                       AccountHub.apply: skip what the load saw (xid), detect gaps (seq),
                       apply in memory (AccessModel), note the effects
                                     │  debounce (HUB_DEBOUNCE_SECONDS) merges bursts
                       only the affected sockets: actor → sockets, client → sockets
                                     │
                       socket: interned view → cached diff → pre-encoded frames

Sockets attach after their connect and detach when their channel ends; the hub is loaded by its
first socket and freed with its last. Nothing on the fan-out path reads the database.

A message whose sequence number is not the next one (a gap), a reconnect of the stream, an
oversized transaction or a failure while applying all lead to one reload: the model is read again
from the database and every socket of the account recomputes, pushing only what differs from
what it was told.

A message that never reached Redis (the writer could not publish it) shows no gap: the change
log is the truth. The hub keeps a `Ledger` (its load's snapshot, the transactions applied
since) that the process's catch-up (`firezone.catchup`) compares with the log once per
`STREAM_CATCHUP_SECONDS`; a committed transaction still missing at the next poll reloads the hub
(reason "missed").

Client sockets implement `ClientSocket`, gateway sockets `GatewaySocket` (below).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from django.conf import settings
from django.db import DatabaseError

from firezone import catchup, metrics, stream
from firezone.db import db_call
from firezone.phoenix.framing import V1
from gateways import wire
from gateways.hub.model import AccessModel, ClientView, Effects, GrantSet

logger = logging.getLogger(__name__)


# How long after a load a message numbered before its baseline may still arrive (it was
# published before the load read the sequence number, on another Redis connection).
LATE_DELIVERY_SECONDS = 1.0
# Rows whose last change number a hub remembers before it compacts them away by reloading.
ROW_WATERMARKS_LIMIT = 200_000
# Device rows a reload does not convey to their own sockets (`catchup_missed`).
DEVICE_TABLES = ("clients", "gateways")
# Pauses between attempts to load an account's model (a lock timeout, a failover).
LOAD_RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 0.0)


def debounce_seconds() -> float:
    return float(getattr(settings, "HUB_DEBOUNCE_SECONDS", 0.02))


def recompute_seconds() -> float:
    return float(getattr(settings, "CLIENT_RECOMPUTE_SECONDS", 60))


class ClientSocket(Protocol):
    hub_actor_id: uuid.UUID
    hub_client_id: str

    async def hub_refresh(self, broken_policies: set[str]) -> None: ...
    async def hub_config_changed(self) -> None: ...
    async def hub_client_changes(self, changes: list[dict[str, Any]]) -> None: ...
    def hub_time_bound(self) -> bool: ...


class GatewaySocket(Protocol):
    def hub_changes(self, changes: list[dict[str, Any]]) -> None: ...
    def hub_reloaded(self) -> None: ...


# --- diffs ------------------------------------------------------------------------------------


Frame = tuple[str, Any, str]  # (event, payload, V1 text of the push on topic "client")


def _frame(event: str, payload: Any) -> Frame:
    return event, payload, V1.encode_push("client", event, payload)


def diff_frames(old: ClientView, new: ClientView, *, deletions_only: bool = False) -> list[Frame]:
    """What to tell a client that was told `old` and should know `new` (§3.1.4): vanished
    resources and resources whose sites changed are deleted first (a site change is a toggle),
    then new and changed ones are sent."""
    if old is new:
        return []
    before, after = old.resources, new.resources
    frames = [
        _frame(wire.RESOURCE_DELETED, wire.resource_deleted(rid))
        for rid, view in before.items()
        if rid not in after
        or (not deletions_only and view["gateway_groups"] != after[rid]["gateway_groups"])
    ]
    if deletions_only:
        return frames
    for rid, view in after.items():
        previous = before.get(rid)
        if (
            previous is None
            or previous != view
            or previous["gateway_groups"] != view["gateway_groups"]
        ):
            frames.append(
                _frame(wire.RESOURCE_CREATED_OR_UPDATED, wire.resource_created_or_updated(view))
            )
    return frames


def deletions_view(old: ClientView, frames: Iterable[Frame]) -> ClientView:
    """`old` without the resources `frames` deleted (the state after a deletions-only push)."""
    deleted = {payload for event, payload, _ in frames if event == wire.RESOURCE_DELETED}
    return ClientView({rid: v for rid, v in old.resources.items() if rid not in deleted})


# --- the hub ----------------------------------------------------------------------------------


class AccountHub:
    def __init__(self, account_id: Any) -> None:
        self.account_id = str(account_id)
        self.model: AccessModel | None = None
        # What the model holds, for the change-log catch-up; replaced at each load.
        self.ledger: catchup.Ledger | None = None
        self.last_seq = 0
        self.clients_by_actor: dict[uuid.UUID, set[ClientSocket]] = {}
        self.clients_by_id: dict[str, set[ClientSocket]] = {}
        self.gateways: set[GatewaySocket] = set()
        self.ready = asyncio.Event()
        self.closed = False
        self.refs = 0  # acquire() minus release()
        # Messages received while (re)loading, applied after the load; a list from the start, so
        # what arrives between the subscription and the first load waits too.
        self._buffer: list[stream.StreamMessage] | None = []
        self._loading = False
        self._reload_again: str | None = None
        # The sequence number the last load started from: a message numbered at most this,
        # arriving within LATE_DELIVERY_SECONDS of the load, was published before it.
        self._baseline = 0
        self._late_until = 0.0
        self._pending = Effects()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task | None = None
        self._periodic: asyncio.Task | None = None
        self._diffs: dict[tuple[int, int], tuple[ClientView, ClientView, list[Frame]]] = {}
        self._load_error: BaseException | None = None

    # ---------------------------------------------------------------- sockets

    @property
    def empty(self) -> bool:
        return not self.clients_by_actor and not self.gateways

    def attach_client(self, socket: ClientSocket) -> None:
        self.clients_by_actor.setdefault(socket.hub_actor_id, set()).add(socket)
        self.clients_by_id.setdefault(socket.hub_client_id, set()).add(socket)

    def detach_client(self, socket: ClientSocket) -> None:
        _discard(self.clients_by_actor, socket.hub_actor_id, socket)
        _discard(self.clients_by_id, socket.hub_client_id, socket)

    def client_sockets(self) -> list[ClientSocket]:
        return [s for sockets in self.clients_by_actor.values() for s in sockets]

    # ---------------------------------------------------------------- what sockets ask

    def view_for(self, actor_id: Any, ctx: Any, version: str | None) -> tuple[GrantSet, ClientView]:
        assert self.model is not None
        grantset = self.model.grantset(actor_id)
        return grantset, self.model.client_view(
            grantset, ctx if grantset.conditional else None, version
        )

    def refresh(
        self,
        told: ClientView,
        actor_id: Any,
        ctx: Any,
        version: str | None,
        broken_policies: set[str],
    ) -> tuple[GrantSet, ClientView, list[Frame]]:
        """What a socket that was told `told` must be pushed now: its grant set, its new view
        and the frames. A policy whose grant changed is "deleted, then inserted" (§5.6): first
        the deletions as if the changed policies were gone, then the diff to the new view."""
        assert self.model is not None
        grantset, view = self.view_for(actor_id, ctx, version)
        if broken_policies and any(
            str(g.policy_id) in broken_policies
            for grants in grantset.access.grants.values()
            for g in grants
        ):
            without = self.model.client_view(
                self.model.without_policies(grantset, broken_policies), ctx, version
            )
            first = diff_frames(told, without, deletions_only=True)
            return grantset, view, first + diff_frames(deletions_view(told, first), view)
        return grantset, view, self.diff(told, view)

    def diff(self, old: ClientView, new: ClientView) -> list[Frame]:
        """`diff_frames`, computed once per (old, new) pair per flush: sockets that were told
        the same thing and now see the same thing share the frames."""
        key = (id(old), id(new))
        cached = self._diffs.get(key)
        if cached is None:
            cached = self._diffs[key] = (old, new, diff_frames(old, new))  # keeps ids alive
        return cached[2]

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        try:
            await stream.subscriber().subscribe(self.account_id, self.on_message)
            await self.reload("start")
        except BaseException as exc:
            self._load_error = exc
            raise
        finally:
            self.ready.set()
        self._periodic = asyncio.get_running_loop().create_task(self._recompute_periodically())
        catchup.follow(self)

    async def wait_ready(self) -> None:
        await self.ready.wait()
        if self._load_error is not None or self.model is None:
            raise RuntimeError(f"account hub {self.account_id} could not be loaded")

    async def close(self) -> None:
        self.closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        if self._periodic is not None:
            self._periodic.cancel()
        catchup.unfollow(self)
        await stream.subscriber().unsubscribe(self.account_id, self.on_message)
        metrics.HUBS.dec()

    async def reload(self, reason: str) -> None:
        """Read the model again; every socket recomputes (pushing only what differs)."""
        if self._loading:  # a load is under way: run another one after it
            self._reload_again = reason
            return
        metrics.HUB_RELOADS.labels(reason=reason).inc()
        previous_config = self.model.config if self.model is not None else None
        self._loading = True
        if self._buffer is None:
            self._buffer = []
        try:
            while True:
                self._reload_again = None
                seq = await stream.current_seq(stream.subscriber().redis, self.account_id)
                model = await self._load()
                self.model, self.last_seq, self._baseline = model, seq, seq
                self.ledger = catchup.Ledger(model.snapshot)
                self._late_until = time.monotonic() + LATE_DELIVERY_SECONDS
                if self._reload_again is None:
                    break
        finally:
            buffered, self._buffer, self._loading = self._buffer or [], None, False
        if reason != "start":
            # Whatever was missed: every socket recomputes (pushing only differences), gateways
            # re-read their flows.
            for gateway in list(self.gateways):
                gateway.hub_reloaded()
            self._merge(Effects(all_actors=True, config_changed=model.config != previous_config))
        for message in buffered:
            await self.on_message(message)

    async def _load(self) -> AccessModel:
        for attempt, delay in enumerate(LOAD_RETRY_DELAYS):
            try:
                return await db_call(AccessModel.load, self.account_id)
            except DatabaseError:
                if attempt == len(LOAD_RETRY_DELAYS) - 1:
                    raise
                logger.warning("account %s: load failed, retrying", self.account_id, exc_info=True)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # ---------------------------------------------------------------- the stream

    async def on_message(self, message: stream.StreamMessage | None) -> None:
        if self.closed:
            return
        if message is None:
            await self.reload("reconnect")
            return
        if self._buffer is not None:
            self._buffer.append(message)
            return
        if message.seq <= self.last_seq:
            if message.seq <= self._baseline and time.monotonic() < self._late_until:
                return  # published before the load's baseline, delivered late: in the model
            # A number seen already: a duplicate, or the counter was reset (Redis lost it).
            logger.warning(
                "account %s: stream number %d after %d, reloading",
                self.account_id,
                message.seq,
                self.last_seq,
            )
            await self.reload("duplicate")
            return
        if message.seq != self.last_seq + 1:
            logger.warning(
                "account %s: stream gap (%d after %d), reloading",
                self.account_id,
                message.seq,
                self.last_seq,
            )
            await self.reload("gap")
            return
        self.last_seq = message.seq
        if self.ledger is not None:
            self.ledger.note_applied(message.xid)
        if message.reload:
            await self.reload("oversized")
            return
        assert self.model is not None
        if self.model.snapshot.contains(message.xid):
            return  # committed before the load's snapshot: already in the model
        started = time.perf_counter()
        try:
            effects = self.model.apply_all(message.changes)
        except Exception:
            logger.exception("account %s: could not apply a change; reloading", self.account_id)
            await self.reload("error")
            return
        for gateway in list(self.gateways):
            if effects.device_changes:
                gateway.hub_changes(effects.device_changes)
        self._merge(effects)
        metrics.CHANGE_APPLY_SECONDS.observe(time.perf_counter() - started)
        if len(self.model.row_lsn) > ROW_WATERMARKS_LIMIT:
            # The per-row change numbers only guard against transactions published out of order
            # (milliseconds apart); a fresh load starts without them.
            await self.reload("compact")

    # ---------------------------------------------------------------- the change-log catch-up

    def catchup_ledger(self) -> catchup.Ledger | None:
        if self.closed or self._loading or self.model is None:
            return None  # a load brings a fresh ledger
        return self.ledger

    async def catchup_missed(self, ledger: catchup.Ledger, missing: frozenset[int]) -> None:
        """Committed transactions of the account never arrived on the stream: read it all again
        (sockets get the difference, gateways re-read their flows). A reload does not tell a
        socket that its own device row went (or changed): those rows of the missed
        transactions are read from the log and handed over as the stream would have, after
        the reload (the client socket keeps only the newest image of its row, a deletion is
        final)."""
        if ledger is not self.ledger or self.closed:
            return
        rows = await db_call(catchup.logged_changes, self.account_id, missing, DEVICE_TABLES)
        await self.reload("missed")
        clients: dict[str, list[dict[str, Any]]] = {}
        deleted_gateways = []
        for change in rows:
            image = change.get("new") or change.get("old") or {}
            if change["table"] == "clients":
                clients.setdefault(str(image.get("id")), []).append(change)
            elif change["op"] == "delete":
                deleted_gateways.append(change)
        if deleted_gateways:
            for gateway in list(self.gateways):
                gateway.hub_changes(deleted_gateways)
        if clients:
            self._merge(Effects(clients=clients))

    def _merge(self, effects: Effects) -> None:
        pending = self._pending
        pending.actors |= effects.actors
        pending.all_actors |= effects.all_actors
        pending.broken_policies |= effects.broken_policies
        pending.config_changed |= effects.config_changed
        for client_id, changes in effects.clients.items():
            pending.clients.setdefault(client_id, []).extend(changes)
        if self._flush_handle is None and (
            pending.access or pending.config_changed or pending.clients
        ):
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(debounce_seconds(), self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        if self._flush_task is not None and not self._flush_task.done():
            # A flush is still pushing: run again right after it.
            self._flush_task.add_done_callback(lambda _: self._start_flush())
            return
        self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        effects, self._pending = self._pending, Effects()
        targets: list[ClientSocket] = []
        try:
            if effects.config_changed:
                for socket in self.client_sockets():
                    await _guard(socket.hub_config_changed())
            for client_id, changes in effects.clients.items():
                for socket in list(self.clients_by_id.get(client_id, ())):
                    await _guard(socket.hub_client_changes(changes))
            if effects.all_actors:
                targets = self.client_sockets()
            else:
                targets = [
                    s for actor in effects.actors for s in self.clients_by_actor.get(actor, ())
                ]
            for socket in targets:
                await _guard(socket.hub_refresh(effects.broken_policies))
        finally:
            self._diffs.clear()

    async def _recompute_periodically(self) -> None:
        """§5.7: time-window conditions change with the clock, not with the data."""
        while True:
            await asyncio.sleep(recompute_seconds())
            for socket in self.client_sockets():
                if socket.hub_time_bound():
                    await _guard(socket.hub_refresh(set()))
            self._diffs.clear()


async def _guard(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:  # one socket's failure never stops the others' pushes
        logger.exception("a socket failed to apply an account change")


# --- the registry (one per event loop, i.e. per server process) --------------------------------


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AccountHub]] = (
    weakref.WeakKeyDictionary()
)


def _registry() -> dict[str, AccountHub]:
    loop = asyncio.get_running_loop()
    found = _registries.get(loop)
    if found is None:
        found = _registries[loop] = {}
    return found


async def acquire(account_id: Any) -> AccountHub:
    """The account's hub, loaded (and subscribed) on first use. Every `acquire` is paired with a
    `release`; the hub is freed when the last user released it."""
    key = str(account_id)
    hubs = _registry()
    hub = hubs.get(key)
    if hub is None:
        hub = hubs[key] = AccountHub(key)
        hub.refs += 1
        metrics.HUBS.inc()
        try:
            await hub.start()
        except BaseException:
            hub.refs -= 1
            if hubs.get(key) is hub:
                del hubs[key]
            hub.closed = True
            metrics.HUBS.dec()
            raise
        return hub
    hub.refs += 1
    try:
        await hub.wait_ready()
    except BaseException:
        hub.refs -= 1
        raise
    return hub


async def release(hub: AccountHub) -> None:
    hub.refs -= 1
    if hub.refs > 0 or hub.closed:
        return
    hubs = _registry()
    if hubs.get(hub.account_id) is hub:
        del hubs[hub.account_id]
    await hub.close()


def loaded() -> dict[str, AccountHub]:
    return dict(_registry())


K = TypeVar("K")


def _discard(index: dict[K, set[ClientSocket]], key: K, socket: ClientSocket) -> None:
    """Take a socket out of an index of socket sets; an emptied set leaves the index."""
    sockets = index.get(key)
    if sockets is not None:
        sockets.discard(socket)
        if not sockets:
            del index[key]
