"""The Celery app. The beat schedule lives here, in one place."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from celery.schedules import crontab

from firezone.metrics import connect_celery_signals
from firezone.origin import origin, system

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firezone.settings")


class OriginTask(Task):
    """Every task of the app: change-log rows its run writes without a subject name the task
    ({"kind": "system", "job": <task name>}, firezone/origin.py). In `__call__`, so a worker's
    run, an eager run and a direct call of the task function alike carry it."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with origin(system(self.name)):
            return super().__call__(*args, **kwargs)


app = Celery("firezone", task_cls=OriginTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task outcomes → firezone_celery_tasks_total; CELERY_METRICS_PORT serves a worker's metrics.
connect_celery_signals()

# Every periodic job of the product, declared once. Tasks are idempotent (acks_late).
app.conf.beat_schedule = {
    "heartbeat": {"task": "firezone.tasks.heartbeat", "schedule": 30.0},
    "presence-sweep": {"task": "gateways.tasks.presence_sweep", "schedule": 10.0},
    "flows-delete-expired": {"task": "resources.tasks.flows_delete_expired", "schedule": 60.0},
    "tokens-delete-expired": {"task": "accounts.tasks.tokens_delete_expired", "schedule": 300.0},
    # OIDC browser sessions near expiry: refresh at the IdP (billing_sync_jobs.md §2.14).
    "browser-sessions-refresh": {
        "task": "accounts.tasks.browser_sessions_refresh",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Billing (billing_sync_jobs.md §3.2 rows 4 and 17): one run at a time (firezone/jobs.py);
    # the limits check does nothing with BILLING_ENABLED off.
    "billing-check-account-limits": {
        "task": "billing.tasks.check_account_limits",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # Directory sync (billing_sync_jobs.md §2.2, §3.2 rows 6-10): each tick queues the due
    # providers' runs on the "sync" queue (directory_sync/tasks.py). Mock providers exist only
    # where the mock adapter may be created (dev/staging); elsewhere its tick finds none.
    **{
        f"dsync-{adapter.replace('_', '-')}": {
            "task": f"directory_sync.tasks.sync_{adapter}",
            "schedule": interval,
            "options": {"expires": interval - 10},
        }
        for adapter, interval in (
            ("google_workspace", 120.0),
            ("microsoft_entra", 300.0),
            ("okta", 1200.0),
            ("jumpcloud", 300.0),
            ("mock", 60.0),
        )
    },
    # Audit log retention (issue 18): rows older than AUDIT_LOG_RETENTION_DAYS, in batches.
    "change-log-delete-expired": {
        "task": "firezone.tasks.change_log_delete_expired",
        "schedule": crontab(minute=43, hour=3),
        "options": {"expires": 3600},
    },
    "billing-cleanup-processed-stripe-events": {
        "task": "billing.tasks.cleanup_processed_stripe_events",
        "schedule": crontab(minute=17, hour=3),
        "options": {"expires": 3600},
    },
    # Component versions (§3.2 row 14): the latest releases, read every minute
    # (COMPONENT_VERSIONS_URL); one run at a time.
    "component-versions-refresh": {
        "task": "firezone.tasks.component_versions_refresh",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Outdated-gateway e-mail (§3.2 row 5, §4.4): every 5 minutes; the task itself acts on
    # Sundays only in production (OUTDATED_GATEWAY_EMAIL_SUNDAYS_ONLY).
    "outdated-gateways-notify": {
        "task": "gateways.tasks.outdated_gateways_notify",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # Directory sync (§2.13, §3.2 rows 11-13 in one): the providers' OAuth access tokens are
    # refreshed before they expire; one run at a time (firezone/jobs.py).
    "directory-sync-refresh-provider-tokens": {
        "task": "directory_sync.tasks.refresh_provider_tokens",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
}
