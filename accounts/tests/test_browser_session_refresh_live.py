"""Browser-session refresh and the open pages (billing_sync_jobs.md §2.14, portal.md §7): against a
real daphne serving `/live`, a refused refresh signs out every open page of the session
(`session_revoked`, close 4001), and a granted one keeps them open past the old expiry."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from accounts.models import AuthIdentity, Token
from accounts.services.browser_sessions import browser_sessions_refresh
from accounts.tests._oidc import idp_fixture  # noqa: F401
from accounts.tests.factories import AccountFactory, ActorFactory, IdentityFactory, ProviderFactory
from accounts.tests.fake_idp import FakeIdP
from accounts.tests.portal import UA, session_cookie_for
from tests.live import LiveServer, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def oidc_admin(idp: FakeIdP) -> AuthIdentity:
    """An admin of an OIDC provider at `idp` holding a refresh token the IdP knows (as left by
    a sign-in)."""
    account = AccountFactory()
    provider = ProviderFactory(account=account, oidc=True, adapter_config=idp.adapter_config())
    idp.refresh_grants["rt-ada"] = {"sub": "sub-ada", "claims": {"email": "ada@acme.test"}}
    return IdentityFactory(
        actor=ActorFactory(account=account, admin=True),
        account=account,
        provider=provider,
        provider_identifier="sub-ada",
        provider_state={"access_token": "at-ada", "refresh_token": "rt-ada"},
    )


async def open_page(
    server: LiveServer, identity: AuthIdentity, expires_in: timedelta
) -> ClientConnection:
    """An open admin page of a browser session expiring in `expires_in`."""
    cookie_name, session_key = await run_sync(session_cookie_for, identity, UA)
    updated = await run_sync(
        lambda: Token.objects.filter(type="browser", identity=identity).update(
            expires_at=timezone.now() + expires_in
        )
    )
    assert updated == 1
    return await connect(
        f"ws://{server.host}/live?account={identity.account_id}&topics=changes:resources",
        additional_headers={
            "Cookie": f"{cookie_name}={session_key}",
            "Origin": f"http://{server.host}",
        },
        user_agent_header=UA,
        open_timeout=10,
    )


async def next_event(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def test_a_refused_refresh_signs_out_the_open_pages(live: LiveServer, idp: FakeIdP) -> None:
    identity = await run_sync(oidc_admin, idp)
    first = await open_page(live, identity, timedelta(minutes=10))
    async with first:
        # A second tab of the same browser session.
        cookie = first.request.headers["Cookie"] if first.request else ""
        async with connect(
            f"ws://{live.host}/live?account={identity.account_id}&topics=",
            additional_headers={"Cookie": cookie, "Origin": f"http://{live.host}"},
            user_agent_header=UA,
            open_timeout=10,
        ) as second:
            idp.revoke_refresh_tokens()

            report = await run_sync(browser_sessions_refresh)

            assert report.signed_out == 1
            for ws in (first, second):
                assert await next_event(ws) == {"event": "session_revoked"}
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 4001


async def test_a_granted_refresh_keeps_the_open_page_past_the_old_expiry(
    live: LiveServer, idp: FakeIdP
) -> None:
    identity = await run_sync(oidc_admin, idp)
    ws = await open_page(live, identity, timedelta(seconds=7))
    async with ws:
        report = await run_sync(browser_sessions_refresh)
        assert report.refreshed == 1

        # The socket re-checks its session at the old expiry (+1 s) and finds it extended.
        await asyncio.sleep(9)
        await ws.send(json.dumps({"event": "ping"}))
        assert await next_event(ws) == {"event": "pong"}
