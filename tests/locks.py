"""A job's single-run lock held by another database session, for the one-at-a-time tests of the
beat jobs (firezone/jobs.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

from firezone.jobs import single_run

T = TypeVar("T")


def held_elsewhere(name: str, then: Callable[[], T]) -> T:
    """Run `then()` while another database session holds the job's lock."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with single_run(name) as acquired:
            assert acquired
            taken.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(10)
        return then()
    finally:
        release.set()
        holder.join(10)
