"""`make run` (python -m firezone.devservices run) keeps going when one of its processes dies:
the Celery worker is SIGKILLed, it is started again and announced, daphne and beat go on; Ctrl-C
then stops everything. Against this run's PostgreSQL and Redis (DATABASE_URL / REDIS_URL set, so
`run` starts no services of its own and remembers no seed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from firezone.devservices import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent


def _wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, log: Path, run: subprocess.Popen
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline or run.poll() is not None:
            tail = log.read_text(errors="replace")[-5000:]
            pytest.fail(f"{what}: not seen (make run exit {run.poll()}):\n{tail}")
        time.sleep(0.2)


def _descendants(root: int) -> dict[int, str]:
    """pid → command line of every live process below `root`."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    continue
                found[pid] = cmdline.decode(errors="replace")
                frontier.append(pid)
    return found


def _celery_worker(root: int) -> int | None:
    """The worker's main process: a `celery … worker` whose parent is not one (its pool is)."""
    processes = _descendants(root)
    for pid, cmdline in processes.items():
        if "celery" in cmdline and " worker " in cmdline and "respawn.py" not in cmdline:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])
            if "celery" not in processes.get(parent, "") or "respawn.py" in processes[parent]:
                return pid
    return None


def _health(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return response.status


def test_a_killed_worker_is_restarted_and_ctrl_c_still_stops_everything(
    live_env: dict[str, str], tmp_path: Path
) -> None:
    port, api_port = free_port(), free_port()
    env = {
        **live_env,
        "PORT": str(port),
        "API_PORT": str(api_port),
        "PYTHONWARNINGS": "ignore:You're running the worker with superuser",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "firezone.devservices", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: Ctrl-C below goes to it alone
        )

    def text() -> str:
        return log.read_text(errors="replace")

    started: set[int] = set()
    try:
        _wait_for(lambda: "Ctrl-C stops everything." in text(), 240, "the banner", log, run)
        worker = _wait_for(lambda: _celery_worker(run.pid), 10, "the worker process", log, run)
        web = [pid for pid, cmd in _descendants(run.pid).items() if "-m firezone.webserver" in cmd]
        assert len(web) == 2  # respawn.py's command line names it too, then daphne itself
        ready = text().count(" ready.")

        os.kill(worker, signal.SIGKILL)
        _wait_for(
            lambda: re.search(r"worker \| \[respawn\] worker: exited \(rc=-9\) after [\d.]+ s; "
                              r"restarting in 1 s", text()),
            30, "the restart announcement", log, run,
        )  # fmt: skip
        _wait_for(lambda: text().count(" ready.") > ready, 60, "the new worker", log, run)
        restarted = _celery_worker(run.pid)
        assert restarted is not None and restarted != worker
        # The others never stopped.
        assert run.poll() is None
        assert set(web) <= set(_descendants(run.pid))
        assert _health(port) == 200
        assert "stopped (rc=" not in text()

        started = set(_descendants(run.pid))
        os.killpg(run.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        assert run.wait(30) == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        broker = redis.Redis.from_url(env["REDIS_URL"])
        broker.delete("celery", "sync", "unacked", "unacked_index", "unacked_mutex")
        broker.close()
    assert text().rstrip().endswith("Stopped.")
    leftovers = {pid for pid in started if Path(f"/proc/{pid}").exists()}
    assert not leftovers, {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in leftovers}
    assert "Traceback" not in text()
