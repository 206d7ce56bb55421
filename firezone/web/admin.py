"""Helpers shared by the domain apps' admin modules: redacted JSON, links, read-only admins."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from firezone import redaction


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
