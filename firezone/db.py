"""Database work of the sockets, off the event loop and off Channels' single database thread.

`database_sync_to_async` runs every call of a process on ONE thread (thread-sensitive mode), so
connects and flow creations queue behind each other. `db_call` runs them on a bounded pool of
`DEVICE_DB_THREADS` threads instead, each with its own Django connection taken from psycopg's
connection pool (settings `DATABASE_POOL_MAX`), and closes stale connections around the call as
`database_sync_to_async` does. Only code that is safe on any thread goes here: the services and
selectors are (they hold no thread-bound state).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

P = ParamSpec("P")
T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=max(1, int(getattr(settings, "DEVICE_DB_THREADS", 8))),
            thread_name_prefix="device-db",
        )
    return _executor


def _closing(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def db_call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a sync database function on the device database pool."""
    call = functools.partial(_closing, fn, *args, **kwargs)
    return await sync_to_async(call, thread_sensitive=False, executor=executor())()
