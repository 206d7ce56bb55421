"""The portal's live socket `/live` (portal.md §7): open admin pages learn about presence and
data changes without reloading.

The browser connects with its session cookie and `?account=<id>&topics=<t1>,<t2>...`; the socket
authenticates the stored browser session of that account like a page request does (admins only),
checks every topic belongs to the account and joins the matching channel-layer groups:

* presence topics of gateways/presence.py (`account_gateways:<account>`,
  `group_gateways:<site>`, `account_clients:<account>`, `actor_clients:<actor>`,
  `account_relays:<account>`, `group_relays:<relay group>`, `relays:<relay>`) → `presence`
  events with the joined/left keys (and the joins' `token_id`, for the deploy pages);
* `changes:<table>` (resources, policies, ...) → `change` events from the account's change feed
  (table, op and row id only: the page re-reads what it shows);
* always the session's group: a revoked session (token deleted: sign-out, revocation, actor or
  identity disabled or deleted) gets `session_revoked` and the socket is closed (4001); the page
  reloads into the sign-in page (§3.13). Expiry sends no message, so the socket also re-checks
  the session when its token or the stored session (4 h idle) is due to expire, and ends the
  same way if it no longer authenticates.

Browser frames are plain JSON objects (not Phoenix frames: only our own pages speak here).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db.models import Q
from django.utils import timezone

from accounts.models import Actor
from accounts.request import connect_context
from accounts.services.tokens import authenticate
from firezone import catchup
from firezone.changes import account_group, portal_group, session_group
from firezone.errors import DomainError
from firezone.web.session import SESSIONS_KEY
from gateways import presence
from gateways.models import Relay, RelayGroup, Site

logger = logging.getLogger(__name__)

MAX_TOPICS = 32
CHANGE_TABLES = frozenset(
    """
    resources policies gateway_groups gateways clients actors actor_groups
    actor_group_memberships auth_providers auth_identities tokens relay_groups relays flows
    resource_connections accounts
    """.split()  # noqa: SIM905
)


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def _same_origin(scope: dict[str, Any]) -> bool:
    """Browsers always send Origin on WebSocket upgrades: refuse other sites' pages."""
    origin = _header(scope, b"origin")
    host = _header(scope, b"host")
    return bool(origin) and bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def _session_key(scope: dict[str, Any]) -> str | None:
    cookie = SimpleCookie()
    try:
        cookie.load(_header(scope, b"cookie"))
    except Exception:  # a malformed cookie header is just "no session"
        return None
    morsel = cookie.get(settings.SESSION_COOKIE_NAME)
    return None if morsel is None else morsel.value


def authenticate_session(scope: dict[str, Any], account_id: str) -> Any:
    """The admin subject of the browser session stored for `account_id`, or None."""

    key = _session_key(scope)
    if key is None:
        return None
    entries = SessionStore(session_key=key).get(SESSIONS_KEY) or []
    for entry in entries:
        if not (isinstance(entry, list | tuple) and len(entry) == 3):
            continue
        kind, entry_account, encoded = entry
        if kind != "browser" or entry_account != account_id:
            continue
        try:
            subject = authenticate(encoded, context=connect_context(scope).auth_context("browser"))
        except DomainError:
            return None
        if str(subject.account_id) != account_id or not subject.actor.is_admin:
            return None
        return subject
    return None


def session_deadline(scope: dict[str, Any], subject: Any) -> datetime | None:
    """When the socket must check its session again: the token's expiry or the stored
    session's (it slides with every page request), whichever comes first."""

    found = Session.objects.filter(session_key=_session_key(scope)).values_list(
        "expire_date", flat=True
    )
    deadlines = [d for d in (subject.expires_at, found.first()) if d is not None]
    return min(deadlines) if deadlines else None


def allowed_topics(account_id: str, topics: list[str]) -> list[str] | None:
    """The topics when every one of them belongs to the account, else None."""

    by_kind: dict[str, set[str]] = {}
    for topic in topics:
        kind, _, ident = topic.partition(":")
        if kind == "changes":
            if ident not in CHANGE_TABLES:
                return None
            continue
        if kind in ("account_gateways", "account_clients", "account_relays"):
            if ident != account_id:
                return None
            continue
        if kind not in ("group_gateways", "actor_clients", "group_relays", "relays"):
            return None
        try:
            uuid.UUID(ident)
        except ValueError:
            return None
        by_kind.setdefault(kind, set()).add(ident)
    global_or_ours = Q(account_id=account_id) | Q(account_id__isnull=True)
    checks = {
        "group_gateways": Site.objects.filter(account_id=account_id),
        "actor_clients": Actor.objects.filter(account_id=account_id),
        # Global (Firezone-owned) relays have no account: admins may watch them too.
        "group_relays": RelayGroup.objects.filter(global_or_ours),
        "relays": Relay.objects.filter(global_or_ours),
    }
    for kind, ids in by_kind.items():
        if checks[kind].filter(pk__in=ids).count() != len(ids):
            return None
    return topics


class PortalLiveConsumer(AsyncJsonWebsocketConsumer):
    groups: list[str] = []
    token_id: Any = None

    async def connect(self) -> None:
        self.joined: list[str] = []
        self.watch: asyncio.Task[None] | None = None
        self.change_tables: set[str] = set()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        account_id = (query.get("account") or [""])[0]
        raw_topics = (query.get("topics") or [""])[0]
        topics = sorted({t for t in raw_topics.split(",") if t})[:MAX_TOPICS]
        try:
            uuid.UUID(account_id)
        except ValueError:
            await self.close(code=4400)
            return
        if not _same_origin(self.scope):
            await self.close(code=4403)
            return
        subject = await database_sync_to_async(authenticate_session)(self.scope, account_id)
        if subject is None:
            await self.close(code=4401)
            return
        checked = await database_sync_to_async(allowed_topics)(account_id, topics)
        if checked is None:
            await self.close(code=4404)
            return
        groups = [session_group(subject.token_id)]
        for topic in checked:
            kind, _, ident = topic.partition(":")
            if kind == "changes":
                self.change_tables.add(ident)
            else:
                groups.append(presence.group_name(topic))
        if self.change_tables:
            groups.append(account_group(account_id))
            groups.append(portal_group(account_id))  # devices' last-seen refreshes
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups
        await self.accept()
        self.token_id = subject.token_id
        # A deletion whose `session.disconnect` was lost is found in the change log.
        if not catchup.register_session(self, self._revoked, [catchup.token_end(self.token_id)]):
            await self._revoked()
            return
        self.watch = asyncio.ensure_future(self.watch_session(account_id, subject))

    async def _revoked(self) -> None:
        await self.session_disconnect({})

    async def watch_session(self, account_id: str, subject: Any) -> None:
        """Expiry has no message: re-check the session when it is due to expire."""
        while True:
            deadline = await database_sync_to_async(session_deadline)(self.scope, subject)
            if deadline is None:
                return
            await asyncio.sleep(max(0.0, (deadline - timezone.now()).total_seconds()) + 1)
            subject = await database_sync_to_async(authenticate_session)(self.scope, account_id)
            if subject is None:
                await self.session_disconnect({})
                return

    async def disconnect(self, code: int) -> None:
        if self.token_id is not None:
            catchup.unregister_session(self, [catchup.token_end(self.token_id)])
        if self.watch is not None and self.watch is not asyncio.current_task():
            self.watch.cancel()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = []

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Keep-alive pings from the page; nothing else is expected.
        await self.send_json({"event": "pong"})

    # --- channel layer ------------------------------------------------------------------------

    async def presence_diff(self, message: dict[str, Any]) -> None:
        def tokens(entries: dict[str, Any]) -> dict[str, Any]:
            return {
                key: {"token_id": (meta or {}).get("token_id")} for key, meta in entries.items()
            }

        await self.send_json(
            {
                "event": "presence",
                "topic": message.get("topic"),
                "joins": tokens(message.get("joins") or {}),
                "leaves": tokens(message.get("leaves") or {}),
            }
        )

    async def domain_change(self, message: dict[str, Any]) -> None:
        change = message.get("change") or {}
        table = change.get("table")
        if table not in self.change_tables:
            return
        row = change.get("new") or change.get("old") or {}
        await self.send_json(
            {"event": "change", "topic": f"changes:{table}", "op": change.get("op"),
             "id": row.get("id")}
        )  # fmt: skip

    async def session_disconnect(self, message: dict[str, Any]) -> None:
        await self.send_json({"event": "session_revoked"})
        await self.close(code=4001)
