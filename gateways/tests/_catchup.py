"""Shared piece of the change-log catch-up tests: make this (test) process's publishes fail."""

from __future__ import annotations

from typing import Any

from firezone.devservices import free_port


def redis_unreachable(settings: Any) -> str:
    """Point this process's publishers (device stream, channel layer) at a closed port, as in a
    writer whose Redis is down while the servers' subscriptions are fine. The pytest-django
    `settings` fixture restores both. Returns the dead URL."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = dead
    layers = {name: dict(config) for name, config in settings.CHANNEL_LAYERS.items()}
    for config in layers.values():
        config["CONFIG"] = {**config.get("CONFIG", {}), "hosts": [dead]}
    settings.CHANNEL_LAYERS = layers
    return dead
