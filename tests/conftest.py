from __future__ import annotations

import os

import pytest

# Fixtures of the two-server tests, and the live daphne of tests/test_api_live.py.
from tests.live import (  # noqa: F401
    live,
    live_daphne,
    pytest_runtest_makereport,
    servers,
    two_daphnes,
)


@pytest.fixture
def live_env(settings) -> dict[str, str]:
    """Environment for a subprocess that must use this test run's database and Redis."""
    from django.db import connection

    db = connection.settings_dict
    host = db["HOST"] or db.get("OPTIONS", {}).get("host", "")
    if host.startswith("/"):
        url = f"postgres://{db['USER']}@/{db['NAME']}?host={host}"
    else:
        url = f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k != "FIREZONE_TESTING"}
    env.update(
        DATABASE_URL=url,
        REDIS_URL=settings.REDIS_URL,
        DEBUG="true",
        DJANGO_SETTINGS_MODULE="firezone.settings",
        PYTHONUNBUFFERED="1",
    )
    return env
