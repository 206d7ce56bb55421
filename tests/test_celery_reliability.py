"""A worker killed mid-task loses nothing and duplicates nothing (issue 17): tasks acknowledge
late (settings: CELERY_TASK_ACKS_LATE, CELERY_TASK_REJECT_ON_WORKER_LOST), so the message of a
worker that dies stays unacknowledged in Redis and another worker runs it again once the
visibility timeout (CELERY_VISIBILITY_TIMEOUT, short here) has passed; the task is idempotent,
so the second run leaves exactly what one run leaves.

The task is a real one: `directory_sync.tasks.sync_provider`, queued by the beat job
`sync_mock` for a Mock provider, run by real `celery worker` processes (prefork pool) against
this run's PostgreSQL and Redis, SIGKILLed while its sync transaction has written rows: the
whole worker (its process group, as a container stop or the OOM killer would), or only the pool
process running the task. Also here: the health checks of compose.yaml's worker and beat, run
against real processes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from django.db import connection

from accounts.models import Actor, ActorGroup, ActorGroupMembership, AuthIdentity, AuthProvider
from accounts.tests.factories import AccountFactory, ProviderFactory
from directory_sync import tasks
from directory_sync.adapters import DIRECTORIES
from firezone.models import ChangeLog

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
VISIBILITY_TIMEOUT = 5
# A directory whose sync takes a few seconds of writes in one transaction.
DIRECTORY_SIZE = {"num_actors": 400, "num_groups": 1500, "max_actors_per_group": 20}


def _compose_check(service: str) -> str:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    test = services[service]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    return test[1].replace("$$", "$")  # compose's escape of a literal $


def _wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def celery_env(live_env: dict[str, str]) -> Iterator[dict[str, str]]:
    env = {
        **live_env,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "HOSTNAME": socket.gethostname(),  # Docker sets it; compose's worker check uses it
        # The image's `celery` is on PATH; this run's is next to its Python.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{live_env.get('PATH', '')}",
        "PYTHONWARNINGS": "ignore:You're running the worker with superuser",
    }
    yield env
    # The messages and the unacknowledged set of this test's broker go with it.
    broker = redis.Redis.from_url(env["REDIS_URL"])
    broker.delete("celery", "sync", "unacked", "unacked_index", "unacked_mutex")
    broker.close()


class Worker:
    """`celery worker` as `make run` starts it (prefork pool), in a process group of its own."""

    def __init__(self, env: dict[str, str], log: Path, name: str) -> None:
        self.log_path = log
        self.name = name
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "firezone", "worker", "-l", "info",
                    "-Q", "celery,sync", "--concurrency", "1", "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                env={**env, "PGAPPNAME": name},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        # Whatever its pool left behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _backends(name: str, *, writing: bool = False) -> set[int]:
    """The PostgreSQL backends of the worker `name`; with `writing`, those inside a transaction
    that has written something."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            + (" AND backend_xid IS NOT NULL" if writing else ""),
            [name],
        )
        return {row[0] for row in cursor.fetchall()}


def _alive_backends(pids: set[int]) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)])
        return {row[0] for row in cursor.fetchall()}


def _queue_due_mock_syncs(env: dict[str, str]) -> str:
    """What beat's `dsync-mock` entry does, in a process of its own (the broker, not eager)."""
    code = (
        "import django; django.setup()\n"
        "from directory_sync.tasks import sync_mock\n"
        "print(sync_mock())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _pool_process(worker: Worker) -> int:
    """The pid of the worker's (only) pool process: the child of its main process."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == worker.process.pid:  # ppid
            return int(stat.parent.name)
    raise AssertionError("the worker has no pool process")


@pytest.mark.parametrize("killed", ["worker", "pool process"])
def test_a_sync_killed_mid_run_is_run_again_once(
    celery_env: dict[str, str], tmp_path: Path, killed: str
) -> None:
    """`worker`: the whole worker dies (its process group SIGKILLed); its message is taken back by
    a new worker past the visibility timeout. `pool process`: only the process running the task
    dies; the worker puts the message back at once (reject on worker lost) and runs it again."""
    provider = ProviderFactory(
        account=AccountFactory(),
        adapter=AuthProvider.Adapter.MOCK,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config=DIRECTORY_SIZE,
    )
    account_id = provider.account_id
    directory = DIRECTORIES[AuthProvider.Adapter.MOCK](provider)
    expected_memberships = len(set(directory.memberships()))
    first_lsn = ChangeLog.objects.order_by("-lsn").values_list("lsn", flat=True).first() or 0

    first = Worker(celery_env, tmp_path / "worker-1.log", "fz-test-worker-1")
    second: Worker | None = None
    try:
        assert _queue_due_mock_syncs(celery_env) == "1"
        received = _wait_for(
            lambda: re.search(r"Task directory_sync\.tasks\.sync_provider\[([\w-]+)\] received",
                              first.log()),
            60, "the first worker to take the sync",
        )  # fmt: skip
        task_id = received.group(1)
        done = rf"sync_provider\[{task_id}\] succeeded in [\d.]+s: 'synced'"
        # Mid-run: its transaction has written rows, nothing is committed yet.
        writers = _wait_for(
            lambda: _backends(first.name, writing=True), 60, "the sync's first writes"
        )
        if killed == "worker":
            first.kill()
        else:
            os.kill(_pool_process(first), signal.SIGKILL)
        # Its session ends (rolled back); a rerun, if any, is in a session of its own.
        _wait_for(lambda: not _alive_backends(writers), 30, "the rollback")
        provider.refresh_from_db()
        assert provider.last_synced_at is None
        assert not AuthIdentity.objects.filter(provider=provider).exists()  # rolled back
        assert not re.search(done, first.log())

        if killed == "worker":
            # The message is still unacknowledged in Redis; past the visibility timeout, a new
            # worker takes it back at start-up.
            time.sleep(VISIBILITY_TIMEOUT + 1)
            second = Worker(celery_env, tmp_path / "worker-2.log", "fz-test-worker-2")
            running = second
        else:
            running = first
        _wait_for(lambda: re.search(done, running.log()), 120, "the second run")
        if killed == "pool process":
            assert "WorkerLostError" in first.log()
            assert len(re.findall(rf"sync_provider\[{task_id}\] received", first.log())) == 2

        # compose.yaml's health check of the worker, against this real one.
        check = subprocess.run(
            ["sh", "-c", _compose_check("worker")],
            cwd=ROOT, env=celery_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
        assert "pong" in check.stdout
    finally:
        first.stop()
        if second is not None:
            second.stop()

    # Exactly one sync's rows, written by one transaction.
    provider.refresh_from_db()
    assert provider.last_synced_at is not None
    assert provider.last_syncs_failed == 0
    identities = AuthIdentity.objects.filter(provider=provider)
    assert identities.count() == DIRECTORY_SIZE["num_actors"]
    assert Actor.objects.filter(account_id=account_id).count() == DIRECTORY_SIZE["num_actors"]
    assert ActorGroup.objects.filter(provider=provider).count() == DIRECTORY_SIZE["num_groups"]
    memberships = ActorGroupMembership.objects.filter(group__provider=provider)
    assert memberships.count() == expected_memberships
    changes = ChangeLog.objects.filter(account_id=account_id, lsn__gt=first_lsn)
    assert changes.values("xid").distinct().count() == 1
    assert set(changes.values_list("op", flat=True)) == {"insert"}
    logged = changes.count()

    # Delivered once more (a worker lost after its commit, before its ack): nothing changes.
    assert tasks.sync_provider(str(provider.pk), force=True) == "synced"
    assert ChangeLog.objects.filter(account_id=account_id, lsn__gt=first_lsn).count() == logged
    assert identities.count() == DIRECTORY_SIZE["num_actors"]
    assert memberships.count() == expected_memberships


def test_compose_beat_health_check_follows_a_real_beat(
    celery_env: dict[str, str], tmp_path: Path
) -> None:
    # compose's check looks in /tmp, where its beat keeps the schedule; here, in tmp_path.
    check = _compose_check("beat").replace("/tmp", str(tmp_path))

    def healthy() -> bool:
        return subprocess.run(["sh", "-c", check], timeout=10).returncode == 0

    assert not healthy()  # no beat, no file
    schedule = tmp_path / "celerybeat-schedule"
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "firezone",
            "beat",
            "-l",
            "info",
            "-s",
            str(schedule),
        ],
        cwd=ROOT,
        env=celery_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(healthy, 30, "beat to write its schedule")
        # It keeps writing: after every message it sends (presence-sweep every 10 s).
        stamp = max(p.stat().st_mtime for p in tmp_path.glob("celerybeat-schedule*"))
        _wait_for(
            lambda: max(p.stat().st_mtime for p in tmp_path.glob("celerybeat-schedule*")) > stamp,
            25,
            "beat to write its schedule again",
        )
    finally:
        beat.terminate()
        beat.wait(30)
    # A stopped beat: the file ages; older than a minute is unhealthy.
    old = time.time() - 120
    for path in tmp_path.glob("celerybeat-schedule*"):
        os.utime(path, (old, old))
    assert not healthy()
