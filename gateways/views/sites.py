"""Admin pages: sites (portal.md §4). Placeholder views answer 404 until built."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from accounts.models import Account
from accounts.web.session import admin_required, not_found


@admin_required
def sites_list(request: HttpRequest, account: Account) -> HttpResponse:
    return not_found(request)


@admin_required
def site_new(request: HttpRequest, account: Account) -> HttpResponse:
    return not_found(request)


@admin_required
def site_detail(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    return not_found(request)


@admin_required
def site_edit(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    return not_found(request)


@admin_required
def site_new_token(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    return not_found(request)


@admin_required
def site_gateways(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    return not_found(request)


@admin_required
def gateway_detail(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    return not_found(request)
