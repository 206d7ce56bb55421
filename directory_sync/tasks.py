"""Celery tasks of directory sync (billing_sync_jobs.md §2.2, §3.2 rows 6-10): thin, over the
selectors and services.

One beat entry per adapter (firezone/celery.py) runs `sync_<adapter>`, which enqueues
`sync_provider(provider_id)` for each provider due (directory_sync.selectors.runs) on the
dedicated "sync" queue (a worker must consume it: `celery worker -Q celery,sync`; `make run`'s
worker does). `sync_provider` holds the provider's lock for the whole run (`firezone.jobs.
single_run`, the session-level advisory lock of the periodic jobs, named after the provider), so
two workers never sync one provider at once: the second skips. It then re-checks that the
provider is still due (the first run may just have finished) and runs the sync. Messages expire
after their adapter's interval, so a busy queue does not pile up stale runs; a run may take up
to 8 h (4 h fetch + 4 h writes, §2.2).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from accounts.models import AuthProvider
from directory_sync.selectors.runs import provider_get_syncable, providers_due_for_sync
from directory_sync.services.runs import provider_sync_run
from directory_sync.services.tokens import provider_access_tokens_refresh_due
from firezone.jobs import single_run

SYNC_QUEUE = "sync"  # settings.CELERY_TASK_ROUTES sends sync_provider there
SYNC_TIME_LIMIT = 8 * 3600
A = AuthProvider.Adapter
# Seconds between two ticks of each adapter's job (§3.2); also the expiry of the runs it queues.
SYNC_INTERVALS: dict[str, float] = {
    A.GOOGLE_WORKSPACE: 120.0,
    A.MICROSOFT_ENTRA: 300.0,
    A.OKTA: 1200.0,
    A.JUMPCLOUD: 300.0,
    A.MOCK: 60.0,
}


@shared_task(
    name="directory_sync.tasks.sync_provider",
    ignore_result=True,
    time_limit=SYNC_TIME_LIMIT,
    soft_time_limit=SYNC_TIME_LIMIT - 60,
)
def sync_provider(provider_id: str, force: bool = False) -> str:
    """Sync one provider unless another worker is on it or it is no longer due. `force` ("Sync
    now") skips the back-off, not the rest of the predicate. Returns what happened."""
    with single_run(f"directory_sync.sync_provider:{provider_id}") as acquired:
        if not acquired:
            return "locked"
        provider = provider_get_syncable(provider_id=provider_id, due_only=not force)
        if provider is None:
            return "not_due"
        return provider_sync_run(provider=provider).outcome


def enqueue_due_syncs(adapter: str) -> int:
    """Queue a run for each provider of `adapter` that is due; returns how many."""
    ids = [str(pk) for pk in providers_due_for_sync(adapter=adapter).values_list("pk", flat=True)]
    expires = SYNC_INTERVALS.get(adapter, 300.0)
    for provider_id in ids:
        sync_provider.apply_async((provider_id,), expires=expires)
    return len(ids)


def enqueue_sync_now(provider_id: str) -> None:
    """ "Sync now" (provider page, staff admin): a run that skips the back-off."""
    sync_provider.apply_async((str(provider_id),), kwargs={"force": True})


@shared_task(name="directory_sync.tasks.sync_google_workspace", ignore_result=True)
def sync_google_workspace() -> int:
    return enqueue_due_syncs(A.GOOGLE_WORKSPACE)


@shared_task(name="directory_sync.tasks.sync_microsoft_entra", ignore_result=True)
def sync_microsoft_entra() -> int:
    return enqueue_due_syncs(A.MICROSOFT_ENTRA)


@shared_task(name="directory_sync.tasks.sync_okta", ignore_result=True)
def sync_okta() -> int:
    return enqueue_due_syncs(A.OKTA)


@shared_task(name="directory_sync.tasks.sync_jumpcloud", ignore_result=True)
def sync_jumpcloud() -> int:
    return enqueue_due_syncs(A.JUMPCLOUD)


@shared_task(name="directory_sync.tasks.sync_mock", ignore_result=True)
def sync_mock() -> int:
    return enqueue_due_syncs(A.MOCK)


@shared_task(name="directory_sync.tasks.refresh_provider_tokens", ignore_result=True)
def refresh_provider_tokens() -> dict[str, Any]:
    """§2.13 for Google Workspace, Microsoft Entra and Okta (the original's three
    `RefreshAccessTokens` jobs in one), one run at a time across workers."""
    with single_run("directory_sync.refresh_provider_tokens") as acquired:
        if not acquired:
            return {"skipped": True}
        return provider_access_tokens_refresh_due()
