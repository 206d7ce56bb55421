"""Admin pages: groups (portal.md §4). Placeholder views answer 404 until built."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from accounts.models import Account
from accounts.web.session import admin_required, not_found


@admin_required
def groups_list(request: HttpRequest, account: Account) -> HttpResponse:
    return not_found(request)


@admin_required
def group_new(request: HttpRequest, account: Account) -> HttpResponse:
    return not_found(request)


@admin_required
def group_detail(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    return not_found(request)


@admin_required
def group_edit(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    return not_found(request)


@admin_required
def group_edit_actors(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    return not_found(request)
