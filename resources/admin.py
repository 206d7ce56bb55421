"""Staff admin for resources, their site connections, policies and flows."""

from __future__ import annotations

from django.contrib import admin

from firezone.web.admin import (
    ChangeLoggedAdmin,
    NoAddAdminMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
)
from resources.models import Flow, Policy, Resource, ResourceConnection

TIMESTAMPS = ("inserted_at", "updated_at")


class ConnectionInline(ReadOnlyInline):
    model = ResourceConnection
    fields = ("gateway_group", "created_by")
    readonly_fields = fields


class PolicyInline(ReadOnlyInline):
    model = Policy
    fk_name = "resource"
    fields = ("actor_group", "description", "disabled_at")
    readonly_fields = fields


@admin.register(Resource)
class ResourceAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = ("name", "type", "address", "ip_stack", "account", "inserted_at")
    list_filter = ("type", "ip_stack", "created_by")
    search_fields = ("name", "address", "account__slug", "id__exact", "persistent_id__exact")
    list_select_related = ("account",)
    ordering = ("-inserted_at",)
    # Address changes must go through the resource service (validation, flow invalidation).
    readonly_fields = (
        "id",
        "persistent_id",
        "account",
        "type",
        "address",
        "ip_stack",
        "filters",
        "created_by",
        "created_by_subject",
        *TIMESTAMPS,
    )
    inlines = [ConnectionInline, PolicyInline]


@admin.register(ResourceConnection)
class ResourceConnectionAdmin(ReadOnlyAdminMixin, ChangeLoggedAdmin):
    list_display = ("resource", "gateway_group", "account", "created_by")
    list_filter = ("created_by",)
    search_fields = ("resource__name", "gateway_group__name", "account__slug")
    list_select_related = ("resource", "gateway_group", "account")


@admin.register(Policy)
class PolicyAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = ("__str__", "actor_group", "resource", "account", "disabled_at", "inserted_at")
    list_filter = (("disabled_at", admin.EmptyFieldListFilter), "created_by")
    search_fields = (
        "description",
        "resource__name",
        "actor_group__name",
        "account__slug",
        "id__exact",
    )
    list_select_related = ("actor_group", "resource", "account")
    ordering = ("-inserted_at",)
    readonly_fields = (
        "id",
        "persistent_id",
        "account",
        "actor_group",
        "resource",
        "conditions",
        # Disabling a policy deletes its flows: the portal's service does that.
        "disabled_at",
        "created_by",
        "created_by_subject",
        *TIMESTAMPS,
    )


@admin.register(Flow)
class FlowAdmin(ReadOnlyAdminMixin, ChangeLoggedAdmin):
    """Flows are immutable; deleting one (through the change log, ChangeLoggedAdmin) revokes
    that authorization: the gateway is told to remove the client's access."""

    list_display = ("id", "account", "client", "resource", "gateway", "expires_at", "inserted_at")
    list_filter = ("expires_at",)
    search_fields = ("id__exact", "account__slug", "client__name", "resource__name")
    list_select_related = ("account", "client", "resource", "gateway")
    ordering = ("-inserted_at",)
