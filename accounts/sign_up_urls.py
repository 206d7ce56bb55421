"""URL lines of the sign-up pages; to be merged into accounts/urls.py (before `<account>`)."""

from __future__ import annotations

from django.urls import path

from accounts.views import sign_up

urlpatterns = [
    path("sign_up", sign_up.sign_up, name="sign_up"),
    path("try", sign_up.sign_up, name="try"),
]
