"""Two worker processes, one provider (issue 16): while this process's `sync_provider` is inside
its fetch (holding the provider's advisory lock), a `sync_provider` for the same provider in
another Python process, on its own database connection, skips with "locked"; once the first run
is over, a run in the other process takes the lock. The in-process variant with two threads is
in directory_sync/tests/test_scheduling.py."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connections

from accounts.models import AuthProvider
from accounts.tests.factories import AccountFactory, ProviderFactory
from directory_sync import adapters, tasks
from directory_sync.tests.fake_directory import FakeDirectory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
A = AuthProvider.Adapter


def _sync_in_another_process(env: dict[str, str], provider_id: str, *, force: bool) -> str:
    code = (
        "import django; django.setup()\n"
        "from directory_sync.tasks import sync_provider\n"
        f"print(sync_provider({provider_id!r}, force={force!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "CELERY_TASK_ALWAYS_EAGER": "true"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_a_second_worker_process_skips_a_provider_being_synced(
    live_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = FakeDirectory(hold=threading.Event())
    monkeypatch.setitem(adapters.DIRECTORIES, A.GOOGLE_WORKSPACE, directory)
    provider = ProviderFactory(
        account=AccountFactory(),
        adapter=A.GOOGLE_WORKSPACE,
        provisioner=AuthProvider.Provisioner.CUSTOM,
    )
    outcome: dict[str, str] = {}

    def first_worker() -> None:
        try:
            outcome["here"] = tasks.sync_provider(str(provider.pk))
        finally:
            connections.close_all()

    running = threading.Thread(target=first_worker)
    running.start()
    try:
        assert directory.entered.wait(10), "the first run never reached its fetch"
        assert _sync_in_another_process(live_env, str(provider.pk), force=True) == "locked"
    finally:
        assert directory.hold is not None
        directory.hold.set()
        running.join(30)
    assert outcome == {"here": "synced"}
    assert directory.reads == 1
    # The lock went with the first run: the other process now takes it. Its registry has the
    # real Google adapter (no network configured here), so the run fails, but it ran.
    assert _sync_in_another_process(live_env, str(provider.pk), force=True) != "locked"
