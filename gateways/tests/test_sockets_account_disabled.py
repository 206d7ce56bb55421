"""A disabled account keeps no devices (issue 15: a paused subscription): its clients' and
gateways' sockets close when the disable commits, reconnects are refused with 503 "The account
is disabled" (retried by connlib, unlike a 4xx), and once the account is enabled again they
connect and join as before."""

from __future__ import annotations

import pytest

from accounts.services.accounts import account_disable, account_enable
from gateways.connect import ACCOUNT_DISABLED
from gateways.tests._sockets_client import client_world, join_client
from gateways.tests._sockets_gateway import GW_HEADERS, join_gateway
from gateways.tests.sockets import CLIENT_PATH, GATEWAY_PATH
from tests.live import DEVICE_HEADERS, Rejected, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def test_disabling_closes_and_refuses_devices_until_enabled(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    gateway_device, _, _ = await join_gateway(live, cw.w)
    async with joined.device, gateway_device:
        await run_sync(account_disable, account=cw.account, reason="Stripe subscription paused")
        await joined.device.expect_closed()
        await gateway_device.expect_closed()

    for path, params, headers in (
        (CLIENT_PATH, joined.params, DEVICE_HEADERS),
        (GATEWAY_PATH, cw.w.gateway_params(), GW_HEADERS),
    ):
        with pytest.raises(Rejected) as info:
            await live.device().connect(path, params, headers)
        assert (info.value.status, info.value.text) == (503, ACCOUNT_DISABLED)

    await run_sync(account_enable, account=cw.account)
    again = await join_client(live, cw)
    gateway_again, _, _ = await join_gateway(live, cw.w)
    async with again.device, gateway_again:
        assert again.init["event"] == "init"
