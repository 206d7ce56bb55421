"""Staff admin for the project-wide change log (read-only, secrets masked)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.safestring import SafeString

from firezone.models import ChangeLog
from firezone.web.admin import ReadOnlyAdminMixin, masked_json


@admin.register(ChangeLog)
class ChangeLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("lsn", "account_id", "table", "op", "inserted_at")
    list_filter = ("table", "op")
    search_fields = ("account_id__exact", "table")
    ordering = ("-lsn",)
    # Row images may contain token hashes, provider secrets, identity state: masked.
    exclude = ("old_data", "data")
    readonly_fields = (
        "lsn",
        "account_id",
        "table",
        "op",
        "vsn",
        "subject",
        "old_data_masked",
        "data_masked",
        "inserted_at",
    )

    def has_delete_permission(self, request: HttpRequest, obj: ChangeLog | None = None) -> bool:
        return False

    @admin.display(description="old data")
    def old_data_masked(self, obj: ChangeLog) -> SafeString:
        return masked_json(obj.old_data)

    @admin.display(description="data")
    def data_masked(self, obj: ChangeLog) -> SafeString:
        return masked_json(obj.data)
