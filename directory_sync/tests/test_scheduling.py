"""Which providers a tick syncs, the per-adapter beat entries and the per-provider lock
(billing_sync_jobs.md §2.2, §3.2 rows 6-10; scenario 41)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from accounts.models import AuthProvider
from accounts.tests.factories import AccountFactory, ProviderFactory
from directory_sync import adapters, tasks
from directory_sync.selectors.runs import providers_due_for_sync, sync_backoff
from directory_sync.tests.fake_directory import FakeDirectory
from firezone.celery import app

A = AuthProvider.Adapter


def provider(adapter: str = A.GOOGLE_WORKSPACE, **fields: object) -> AuthProvider:
    return ProviderFactory(
        account=AccountFactory(),
        adapter=adapter,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        **fields,
    )


def ago(**delta: float) -> object:
    return timezone.now() - timedelta(**delta)


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> FakeDirectory:
    fake = FakeDirectory()
    monkeypatch.setitem(adapters.DIRECTORIES, A.GOOGLE_WORKSPACE, fake)
    return fake


def test_backoff_is_quadratic_and_capped() -> None:
    minutes = [sync_backoff(n) / timedelta(minutes=1) for n in range(7)]
    assert minutes == [10, 20, 50, 100, 170, 240, 240]


@pytest.mark.django_db
def test_selection_predicate() -> None:
    due = {
        "never": provider(),
        "synced 11 min ago": provider(
            last_synced_at=ago(minutes=11), last_sync_attempt_at=ago(minutes=11)
        ),
        "1 failure, 21 min ago": provider(
            last_syncs_failed=1, last_sync_attempt_at=ago(minutes=21)
        ),
        "4 failures, 171 min ago": provider(
            last_syncs_failed=4, last_sync_attempt_at=ago(minutes=171)
        ),
        "30 failures, 4 h ago": provider(
            last_syncs_failed=30, last_sync_attempt_at=ago(hours=4, minutes=1)
        ),
        "null counter": provider(last_syncs_failed=None, last_sync_attempt_at=ago(minutes=11)),
        # The account's status is not checked (§2.2).
        "disabled account": ProviderFactory(
            account=AccountFactory(disabled_at=timezone.now()),
            adapter=A.GOOGLE_WORKSPACE,
            provisioner=AuthProvider.Provisioner.CUSTOM,
        ),
    }
    not_due = {
        "synced 5 min ago": provider(
            last_synced_at=ago(minutes=5), last_sync_attempt_at=ago(minutes=5)
        ),
        # The fixed quirk: a counted failure nulls last_synced_at but the back-off still holds.
        "1 failure, 15 min ago": provider(
            last_syncs_failed=1, last_sync_attempt_at=ago(minutes=15)
        ),
        "4 failures, 2 h ago": provider(last_syncs_failed=4, last_sync_attempt_at=ago(hours=2)),
        "30 failures, 3 h ago": provider(last_syncs_failed=30, last_sync_attempt_at=ago(hours=3)),
        "sync disabled": provider(sync_disabled_at=timezone.now()),
        "provider disabled": provider(disabled_at=timezone.now()),
        "other adapter": provider(adapter=A.OKTA),
        "manual provisioning": ProviderFactory(
            account=AccountFactory(),
            adapter=A.GOOGLE_WORKSPACE,
            provisioner=AuthProvider.Provisioner.MANUAL,
        ),
    }
    selected = set(providers_due_for_sync(adapter=A.GOOGLE_WORKSPACE).values_list("pk", flat=True))
    assert {name for name, p in due.items() if p.pk not in selected} == set()
    assert {name for name, p in not_due.items() if p.pk in selected} == set()


@pytest.mark.django_db
def test_tick_runs_the_due_providers(directory: FakeDirectory) -> None:
    due = provider()
    recent = provider(last_synced_at=ago(minutes=5), last_sync_attempt_at=ago(minutes=5))
    okta = provider(adapter=A.OKTA)
    # Eager Celery in tests: the queued runs happen inside the tick.
    assert tasks.sync_google_workspace() == 1
    assert directory.reads == 1
    due.refresh_from_db()
    assert due.last_synced_at is not None and due.last_syncs_failed == 0
    recent.refresh_from_db()
    okta.refresh_from_db()
    assert okta.last_sync_attempt_at is None
    # The next tick finds nothing due; a run queued meanwhile re-checks and does nothing.
    assert tasks.sync_google_workspace() == 0
    assert tasks.sync_provider(str(due.pk)) == "not_due"
    assert directory.reads == 1
    # "Sync now" skips the back-off, not the rest of the predicate.
    assert tasks.sync_provider(str(due.pk), force=True) == "synced"
    AuthProvider.objects.filter(pk=due.pk).update(sync_disabled_at=timezone.now())
    assert tasks.sync_provider(str(due.pk), force=True) == "not_due"
    assert directory.reads == 2


def test_beat_entries_and_queue() -> None:
    schedule = app.conf.beat_schedule
    expected = {
        "directory_sync.tasks.sync_google_workspace": 120.0,
        "directory_sync.tasks.sync_microsoft_entra": 300.0,
        "directory_sync.tasks.sync_okta": 1200.0,
        "directory_sync.tasks.sync_jumpcloud": 300.0,
        "directory_sync.tasks.sync_mock": 60.0,
    }
    found = {e["task"]: e["schedule"] for e in schedule.values() if e["task"] in expected}
    assert found == expected
    for entry in schedule.values():
        if entry["task"] in expected:
            assert entry["options"]["expires"] == entry["schedule"] - 10
            assert entry["task"] in app.tasks
    assert app.conf.task_routes[tasks.sync_provider.name] == {"queue": tasks.SYNC_QUEUE}
    assert tasks.sync_provider.time_limit == 8 * 3600


@pytest.mark.django_db(transaction=True)
def test_two_runs_of_one_provider_at_once_one_skips(directory: FakeDirectory) -> None:
    google = provider()
    directory.hold = threading.Event()
    outcomes: dict[str, str] = {}

    def run(name: str) -> None:
        try:
            outcomes[name] = tasks.sync_provider(str(google.pk))
        finally:
            connections.close_all()

    first = threading.Thread(target=run, args=("first",))
    first.start()
    # The first run holds the lock and waits inside its fetch.
    assert directory.entered.wait(10)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    second.join(30)
    directory.hold.set()
    first.join(30)
    assert outcomes == {"first": "synced", "second": "locked"}
    assert directory.reads == 1
    # The lock went with the run: the next forced run takes it.
    directory.hold = None
    assert tasks.sync_provider(str(google.pk), force=True) == "synced"
