"""Suite-wide pytest configuration."""

from __future__ import annotations

import multiprocessing
import os

import pytest

# Channels' live-server cases misbehave under `fork` (wrong test database in the child).
multiprocessing.set_start_method("spawn", force=True)
# Sync Playwright tests run an event loop; ORM calls from them are fine in tests.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"


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
