"""Admin pages: settings (portal.md §4). Placeholder views answer 404 until built."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from accounts.models import Account
from accounts.web.session import admin_required, not_found


@admin_required
def account_settings(request: HttpRequest, account: Account) -> HttpResponse:
    return not_found(request)


@admin_required
def account_edit(request: HttpRequest, account: Account) -> HttpResponse:
    return not_found(request)


@admin_required
def notifications_edit(request: HttpRequest, account: Account) -> HttpResponse:
    return not_found(request)


@admin_required
def dns_settings(request: HttpRequest, account: Account) -> HttpResponse:
    return not_found(request)
