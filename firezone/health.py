"""Dependency checks for /healthz."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"database: {exc.__class__.__name__}"
    return None


def check_redis() -> str | None:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        client.ping()
        client.close()
    except Exception as exc:
        return f"redis: {exc.__class__.__name__}"
    return None
