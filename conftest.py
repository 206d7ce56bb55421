"""Suite-wide pytest configuration."""

from __future__ import annotations

import multiprocessing
import os
import re
import uuid
from collections.abc import Iterator

import pytest

from tests import stripe_fake as fake_stripe

# Channels' live-server cases misbehave under `fork` (wrong test database in the child).
multiprocessing.set_start_method("spawn", force=True)
# Sync Playwright tests run an event loop; ORM calls from them are fine in tests.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"


def _isolate_xdist_worker() -> None:
    """Under pytest-xdist (`make test-fast`), give each worker its own Redis.

    pytest-django already gives each worker its own test database (`test_<name>_gw0`, ...). Redis
    is shared, so worker N uses database N + 1 (channel layer, cache, presence, broker) and its own
    stream prefix: pub/sub channels are server-wide, not per database.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    from urllib.parse import urlsplit, urlunsplit

    from channels.layers import channel_layers
    from django.conf import settings
    from django.core.cache import caches

    db = int(worker[2:]) % 15 + 1  # Redis has databases 0-15 by default; 0 is the serial run's
    url = urlunsplit(urlsplit(settings.REDIS_URL)._replace(path=f"/{db}"))
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url
    settings.STREAM_PREFIX = f"fz-{worker}"
    layer = settings.CHANNEL_LAYERS["default"]
    config = {**layer["CONFIG"], "hosts": [url]}
    settings.CHANNEL_LAYERS = {**settings.CHANNEL_LAYERS, "default": {**layer, "CONFIG": config}}
    cache = settings.CACHES["default"]
    settings.CACHES = {**settings.CACHES, "default": {**cache, "LOCATION": url}}
    caches.__dict__.pop("settings", None)  # re-read on first use
    channel_layers.backends.clear()


_isolate_xdist_worker()


_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    # A `str(uuid.uuid4())` parameter gets a stable id: pytest-xdist workers must all collect the
    # same test ids.
    if isinstance(val, uuid.UUID):
        val = str(val)
    return "uuid4" if isinstance(val, str) and _UUID4.match(val) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pytest-playwright's session browser keeps an event loop running: browser tests go last.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def stripe_fake(settings) -> Iterator[fake_stripe.StripeFake]:
    """A fake Stripe on a local port (tests/stripe_fake.py) and billing switched on against it:
    test key, signing secret `whsec_test_1111`, the default price, retries after 100 ms..1 s."""
    fake = fake_stripe.start()
    settings.BILLING_ENABLED = True
    settings.STRIPE_SECRET_KEY = fake_stripe.SECRET_KEY
    settings.STRIPE_WEBHOOK_SIGNING_SECRET = fake_stripe.WEBHOOK_SECRET
    settings.STRIPE_DEFAULT_PRICE_ID = fake_stripe.DEFAULT_PRICE_ID
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_RETRY_BASE_DELAY_MS = 100
    settings.STRIPE_RETRY_MAX_DELAY_MS = 1000
    try:
        yield fake
    finally:
        if fake.server.is_running():
            fake.server.stop()
