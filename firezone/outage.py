"""Telling an outage of PostgreSQL or Redis from a bug (issue 17: outages degrade, they don't
disconnect).

A connection error of either store is temporary: the device sockets answer it as such (a
connect gets `503`, which connlib retries; a request gets an error reply or
`flow_creation_failed`; the socket stays up) and log one line without a traceback. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
from typing import Final

import psycopg
import psycopg_pool
import redis.exceptions
from django.db import utils as db_utils

# The body of a connect refused because a store is down (connlib retries every 5xx).
UNAVAILABLE_BODY: Final = "Service temporarily unavailable"
# The reason of an error reply to a request that failed because a store is down.
UNAVAILABLE_REASON: Final = "unavailable"

OUTAGE_ERRORS: Final[tuple[type[BaseException], ...]] = (
    redis.exceptions.ConnectionError,  # includes redis-py's BusyLoadingError (a restarting Redis)
    redis.exceptions.TimeoutError,
    db_utils.OperationalError,  # server gone, connection refused, "the database is starting up"
    db_utils.InterfaceError,  # a connection Django found closed
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,  # no connection could be made within the pool's timeout
    ConnectionError,  # OS-level resets and refusals
    TimeoutError,  # a subscription or a socket read that did not finish
)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is a connection error of PostgreSQL or Redis."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OUTAGE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def describe(exc: BaseException) -> str:
    """One line for the log: the error's type and first line, no traceback."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def log_outage(log: logging.Logger, what: str, exc: BaseException) -> None:
    log.warning("%s: a store is unavailable (%s)", what, describe(exc))
