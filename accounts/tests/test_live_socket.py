"""The portal's live socket `/live` (portal.md §7) against a real daphne: who may connect, which
topics, and that presence diffs, change events and session revocation reach the page."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from accounts.models import Token
from accounts.services.tokens_admin import token_delete
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    subject_for,
)
from accounts.tests.portal import UA, session_cookie_for
from gateways.tests.factories import SiteFactory
from gateways.tests.sockets import GATEWAY_PATH, GATEWAY_UA, World, make_world
from resources.services.resources import resource_create
from tests.live import LiveServer, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def open_live(
    server: LiveServer,
    identity: Any,
    topics: list[str],
    *,
    account_id: Any = None,
    origin: str | None = None,
    user_agent: str = UA,
) -> ClientConnection:
    cookie_name, session_key = await run_sync(session_cookie_for, identity, user_agent)
    query = f"account={account_id or identity.account_id}&topics={','.join(topics)}"
    return await connect(
        f"ws://{server.host}/live?{query}",
        additional_headers={
            "Cookie": f"{cookie_name}={session_key}",
            "Origin": origin or f"http://{server.host}",
        },
        user_agent_header=user_agent,
        open_timeout=10,
    )


async def next_event(ws: ClientConnection, event: str, timeout: float = 10) -> dict[str, Any]:
    while True:
        data = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if data.get("event") == event:
            return data


async def refused(coro: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        await coro
    return info.value.response.status_code


async def test_signed_out_foreign_origin_and_non_admin_are_refused(live: LiveServer) -> None:
    world: World = await run_sync(make_world)
    topics = [f"account_gateways:{world.account.pk}"]
    # No session cookie at all.
    assert await refused(
        connect(f"ws://{live.host}/live?account={world.account.pk}&topics={topics[0]}",
                additional_headers={"Origin": f"http://{live.host}"})
    ) == 403  # fmt: skip
    # Another site's page may not use the admin's cookie.
    assert await refused(open_live(live, world.identity, topics, origin="https://evil.test")) == 403
    # A regular user's session.
    user_identity = await run_sync(
        lambda: IdentityFactory(
            actor=ActorFactory(account=world.account),
            account=world.account,
            provider=world.identity.provider,
        )
    )
    assert await refused(open_live(live, user_identity, topics)) == 403
    # The session is bound to the browser's User-Agent.
    cookie_name, key = await run_sync(session_cookie_for, world.identity, UA)
    assert await refused(
        connect(f"ws://{live.host}/live?account={world.account.pk}&topics={topics[0]}",
                additional_headers={"Cookie": f"{cookie_name}={key}",
                                    "Origin": f"http://{live.host}"},
                user_agent_header="SomethingElse/1.0")
    ) == 403  # fmt: skip


async def test_topics_of_another_account_are_refused(live: LiveServer) -> None:
    world: World = await run_sync(make_world)
    other_site = await run_sync(lambda: SiteFactory(account=AccountFactory()))
    for topic in (
        f"group_gateways:{other_site.pk}",
        f"account_gateways:{other_site.account_id}",
        "group_gateways:not-a-uuid",
        "changes:django_session",
        "whatever:1",
    ):
        assert await refused(open_live(live, world.identity, [topic])) == 403, topic


async def test_gateway_presence_reaches_the_page_with_its_token(live: LiveServer) -> None:
    world: World = await run_sync(make_world)
    # The site's topic carries the token id of the joining gateway (the Deploy page needs it).
    ws = await open_live(live, world.identity, [f"group_gateways:{world.site.pk}"])
    async with ws:
        device = live.device()
        await device.connect(GATEWAY_PATH, world.gateway_params(), {"User-Agent": GATEWAY_UA})
        await device.join("gateway", {})
        joined = await next_event(ws, "presence")
        assert joined["topic"] in (f"group_gateways:{world.site.pk}",
                                   f"account_gateways:{world.account.pk}")  # fmt: skip
        ((gateway_id, meta),) = joined["joins"].items()
        token_id = await run_sync(
            lambda: str(Token.objects.get(type="gateway_group", gateway_group_id=world.site.pk).pk)
        )
        assert meta == {"token_id": token_id}
        await device.close()
        while True:
            left = await next_event(ws, "presence")
            if left["leaves"]:
                break
        assert gateway_id in left["leaves"]


async def test_change_events_and_session_revocation(live: LiveServer) -> None:
    world: World = await run_sync(make_world)
    ws = await open_live(live, world.identity, ["changes:resources"])
    async with ws:
        subject = await run_sync(subject_for, world.actor, identity=world.identity)
        resource = await run_sync(
            lambda: resource_create(
                subject=subject, name="gitlab", type="dns", address="gitlab.example.com",
                connections=[world.site],
            )
        )  # fmt: skip
        change = await next_event(ws, "change")
        assert change == {
            "event": "change",
            "topic": "changes:resources",
            "op": "insert",
            "id": str(resource.pk),
        }
        # Revoking this browser session closes the socket after telling the page.
        token = await run_sync(
            lambda: (
                Token.objects.filter(type="browser", identity=world.identity)
                .order_by("-inserted_at")
                .first()
            )
        )
        assert token is not None
        await run_sync(lambda: token_delete(subject=subject, token=token))
        assert (await next_event(ws, "session_revoked")) == {"event": "session_revoked"}
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4001


async def test_an_expiring_session_is_told_without_a_message(live: LiveServer) -> None:
    """Expiry publishes nothing: the socket re-checks its session when the token is due."""
    world: World = await run_sync(make_world)
    cookie_name, session_key = await run_sync(session_cookie_for, world.identity, UA)
    expiring = await run_sync(
        lambda: Token.objects.filter(type="browser", identity=world.identity).update(
            expires_at=timezone.now() + timedelta(seconds=2)
        )
    )
    assert expiring
    async with connect(
        f"ws://{live.host}/live?account={world.identity.account_id}&topics=",
        additional_headers={
            "Cookie": f"{cookie_name}={session_key}",
            "Origin": f"http://{live.host}",
        },
        user_agent_header=UA,
        open_timeout=10,
    ) as ws:
        assert (await next_event(ws, "session_revoked")) == {"event": "session_revoked"}
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4001
