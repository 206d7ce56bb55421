"""Admin pages: identity providers (portal.md §4). Placeholder views answer 404 until built."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from accounts.models import Account
from accounts.web.session import admin_required, not_found


@admin_required
def providers_list(request: HttpRequest, account: Account) -> HttpResponse:
    return not_found(request)


@admin_required
def provider_new(request: HttpRequest, account: Account) -> HttpResponse:
    return not_found(request)


@admin_required
def system_provider_detail(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    return not_found(request)


@admin_required
def provider_adapter_new(request: HttpRequest, account: Account, adapter: str) -> HttpResponse:
    return not_found(request)


@admin_required
def provider_detail(request: HttpRequest, account: Account, adapter: str, id: str) -> HttpResponse:
    return not_found(request)


@admin_required
def provider_edit(request: HttpRequest, account: Account, adapter: str, id: str) -> HttpResponse:
    return not_found(request)


@admin_required
def provider_connect_redirect(
    request: HttpRequest, account: Account, adapter: str, id: str
) -> HttpResponse:
    return not_found(request)


@admin_required
def provider_connect_callback(
    request: HttpRequest, account: Account, adapter: str, id: str
) -> HttpResponse:
    return not_found(request)
