"""Shared helpers of the presence / relay tests: an isolated key prefix and a channel listener.

Import the fixture into a test module: `from gateways.tests._presence import presence_env_fixture`
(the fixture is named `presence_env`).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer

from gateways import presence


@pytest.fixture(name="presence_env")
async def presence_env_fixture(settings):
    """Presence keys of this test only (parallel runs share nothing); closes the loop's client."""
    settings.PRESENCE_KEY_PREFIX = f"test-presence:{uuid.uuid4().hex}"
    yield settings
    await presence.aclose()


class Listener:
    """A channel-layer channel subscribed to the diff groups of some topics."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel = ""

    async def listen(self, *topics: str) -> Listener:
        if not self.channel:
            self.channel = await self.layer.new_channel()
        for topic in topics:
            await self.layer.group_add(presence.group_name(topic), self.channel)
        return self

    async def receive(self, timeout: float = 2.0) -> dict:
        return await asyncio.wait_for(self.layer.receive(self.channel), timeout)

    async def nothing(self, timeout: float = 0.2) -> bool:
        try:
            message = await self.receive(timeout)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected message {message}")


def new_id() -> str:
    return str(uuid.uuid4())
