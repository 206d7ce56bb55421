"""Staff admin: the "Sync now" action on identity providers (billing_sync_jobs.md §2.2).

The AuthProvider admin belongs to accounts (accounts/admin.py: last sync, attempts, failures,
error); directory sync adds its action to that registered admin here — Django loads the admin
modules in INSTALLED_APPS order, accounts first. The action queues a run that skips the
back-off for each selected provider that can sync (enabled, provisioned by directory sync, sync
not disabled by an IdP refusal); the others are reported and left alone.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import AuthProvider
from directory_sync.tasks import enqueue_sync_now


@admin.action(description="Sync now")
def sync_now(
    model_admin: admin.ModelAdmin[AuthProvider],
    request: HttpRequest,
    queryset: QuerySet[AuthProvider],
) -> None:
    queued: list[str] = []
    skipped: list[str] = []
    for provider in queryset.order_by("name"):
        can_sync = (
            provider.provisioner == AuthProvider.Provisioner.CUSTOM
            and provider.disabled_at is None
            and provider.sync_disabled_at is None
        )
        if can_sync:
            enqueue_sync_now(str(provider.pk))
            queued.append(provider.name)
        else:
            skipped.append(provider.name)
    if queued:
        model_admin.message_user(request, f"Directory sync queued for: {', '.join(queued)}.")
    if skipped:
        model_admin.message_user(
            request,
            "Not synced (disabled, not a directory-sync provider, or sync disabled until the "
            f"provider is reconnected): {', '.join(skipped)}.",
            messages.WARNING,
        )


_provider_admin = admin.site.get_model_admin(AuthProvider)
_provider_admin.actions = [*(_provider_admin.actions or ()), sync_now]
