"""Admin routes of the billing app (portal.md §2.2 row 60)."""

from __future__ import annotations

from django.urls import path

from billing import views

A = "<str:account>"

urlpatterns = [
    path(f"{A}/settings/billing", views.billing_page, name="settings_billing"),
]
