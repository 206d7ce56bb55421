"""Helpers shared by the domain apps' admin modules: redacted JSON, links, read-only admins,
and the base admin whose writes go through the change log."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from firezone import changes, origin, redaction
from firezone.web.session import request_context


def masked_json(value: Any) -> SafeString:
    """Pretty-printed JSON for a read-only admin field, secrets redacted by the same rule as
    the change log's."""
    text = json.dumps(redaction.redact(value), indent=2, sort_keys=True, default=str)
    return format_html("<pre>{}</pre>", text)


def changelist_link(model: type[models.Model], label: str, **filters: Any) -> SafeString:
    """Link to a model's admin change list, filtered by `filters` (lookup=value)."""
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    if filters:
        url = f"{url}?{urlencode(filters)}"
    return format_html('<a href="{}">{}</a>', url, label)


def change_link(obj: models.Model | None) -> SafeString | str:
    """Link to one object's admin change page ("-" for None)."""
    if obj is None:
        return "-"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, str(obj))


class ChangeLoggedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose writes take the services' path (firezone.changes), not a bare ORM one.

    Deleting a row (its page or the bulk "Delete selected" action) goes through
    `changes.delete`: every row the delete cascades to is recorded in the change log and
    published after commit, so sockets see it like any other deletion (a deleted token's
    sessions are disconnected, a deleted client's, gateway's or relay's socket is closed,
    clients and gateways are told of deleted resources, policies, memberships and flows).
    A save records an update (from the row as locked before the form's values were applied) or
    an insert. Staff users have no account subject: the rows name the staff user instead
    (`StaffOriginMiddleware`, kind "staff"). Fields whose change needs more than a recorded
    update (disabling an actor, a policy or a provider...) are read-only on the admins: the
    portal or the actions change them through the services."""

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            changes.delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            changes.delete(queryset)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            if not change:
                super().save_model(request, obj, form, change)
                changes.inserted(obj)
                return
            # The form has already applied its values to `obj`: the old image is the row's.
            current = type(obj)._default_manager.select_for_update().get(pk=obj.pk)
            old = changes.row_image(current)
            super().save_model(request, obj, form, change)
            changes.updated(old, obj)


class NoAddAdminMixin:
    """Rows are created by services (sign-up, sign-in, connects, sync), not by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdminMixin(NoAddAdminMixin):
    """Inspect only; deletion stays possible unless the admin also forbids it."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """A compact read-only list of related rows, each linking to its own page."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def staff_origin(request: HttpRequest) -> dict[str, Any]:
    """The change-log writer of a staff admin request: who, from which IP and browser."""
    context = request_context(request, "browser")
    return origin.staff(
        username=request.user.get_username(),
        remote_ip=context.remote_ip,
        user_agent=context.user_agent,
    )


class StaffOriginMiddleware:
    """Every write of a staff admin request (saves, deletes, actions, whichever admin) is
    recorded with the staff user as its writer: change-log rows written there without a subject
    carry `{"kind": "staff", "staff_user", "remote_ip", "user_agent"}`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.prefix is None:
            self.prefix = reverse("admin:index")
        if not request.path.startswith(self.prefix):  # before `user`: it costs a query
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is None or not user.is_staff:
            return self.get_response(request)
        with changes.origin(staff_origin(request)):
            return self.get_response(request)
