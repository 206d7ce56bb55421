"""Live device sockets stay in their channel-layer groups past channels-redis's group expiry."""

from __future__ import annotations

import time
from types import SimpleNamespace

from channels.layers import get_channel_layer

from gateways.consumers.base import _Local, refresh_groups


async def test_refresh_renews_the_membership_of_every_live_socket() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    groups = ["gateway.refresh-test", "session.refresh-test"]
    old = time.time() - layer.group_expiry + 5  # about to be dropped by the next group_send
    async with layer.connection(0).pipeline(transaction=False) as pipe:
        for group in groups:
            pipe.zadd(layer._group_key(group), {channel: old})
        await pipe.execute()
    local = _Local()
    local.channels[channel] = SimpleNamespace(  # type: ignore[assignment]  # a consumer stand-in
        channel_layer=layer, channel_name=channel, groups=groups
    )
    assert await refresh_groups(local) == 2
    conn = layer.connection(0)  # the layer's own client of this loop: not closed here
    for group in groups:
        score = await conn.zscore(layer._group_key(group), channel)
        assert score is not None and score > old + layer.group_expiry / 2
        assert await conn.ttl(layer._group_key(group)) > layer.group_expiry - 60


async def test_nothing_to_refresh_without_sockets() -> None:
    assert await refresh_groups(_Local()) == 0
