"""Celery tasks of directory sync (billing_sync_jobs.md §2, §3.2): thin, over the services."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from directory_sync.services.tokens import provider_access_tokens_refresh_due
from firezone.jobs import single_run


@shared_task(name="directory_sync.tasks.refresh_provider_tokens", ignore_result=True)
def refresh_provider_tokens() -> dict[str, Any]:
    """§2.13 for Google Workspace, Microsoft Entra and Okta (the original's three
    `RefreshAccessTokens` jobs in one), one run at a time across workers."""
    with single_run("directory_sync.refresh_provider_tokens") as acquired:
        if not acquired:
            return {"skipped": True}
        return provider_access_tokens_refresh_due()
