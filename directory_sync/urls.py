"""Admin routes of directory sync (portal.md §2.2): "Sync now" on a provider's page."""

from __future__ import annotations

from django.urls import path

from directory_sync import views

A = "<str:account>"

urlpatterns = [
    path(
        f"{A}/settings/identity_providers/<str:adapter>/<str:id>/sync",
        views.provider_sync_now,
        name="identity_provider_sync_now",
    ),
]
