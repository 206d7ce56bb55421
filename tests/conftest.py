from __future__ import annotations

import os

import pytest

from tests.live import servers, two_daphnes  # noqa: F401 (fixtures of the two-server tests)


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
