"""Staff admin for the data plane. PSK seeds (`psk_base`) are never shown."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.models import CreatedBy, Token
from firezone.web.admin import (
    ChangeLoggedAdmin,
    NoAddAdminMixin,
    ReadOnlyAdminMixin,
    changelist_link,
)
from gateways.models import Client, Gateway, NetworkAddress, Relay, RelayGroup, Site
from gateways.services._upsert import LAST_SEEN_COLUMNS

TIMESTAMPS = ("inserted_at", "updated_at")
LAST_SEEN = (*LAST_SEEN_COLUMNS, "last_seen_at")
SYSTEM_SUBJECT = {"name": "System", "email": None}


def _members_and_tokens(
    group: Site | RelayGroup, members: type[Model], label: str, token_field: str
) -> str:
    """Links to a group's members (their `group` FK) and to its tokens (their `token_field`)."""
    if group.pk is None:
        return "-"
    return format_html(
        "{} | {}",
        changelist_link(members, label, group__id__exact=group.pk),
        changelist_link(Token, "Tokens", **{f"{token_field}__id__exact": group.pk}),
    )


@admin.register(Site)
class SiteAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = ("name", "managed_by", "account", "created_by", "inserted_at")
    list_filter = ("managed_by", "created_by")
    search_fields = ("name", "account__slug", "id__exact")
    list_select_related = ("account",)
    ordering = ("-inserted_at",)
    readonly_fields = (
        "id",
        "account",
        "managed_by",
        "created_by",
        "created_by_subject",
        "related_links",
        *TIMESTAMPS,
    )

    @admin.display(description="related")
    def related_links(self, obj: Site) -> str:
        return _members_and_tokens(obj, Gateway, "Gateways", "gateway_group")


@admin.register(Gateway)
class GatewayAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = ("name", "group", "account", "ipv4", "ipv6", "last_seen_version", "last_seen_at")
    list_filter = ("last_seen_version",)
    search_fields = ("name", "external_id", "public_key", "account__slug", "group__name")
    list_select_related = ("group", "account")
    ordering = ("-last_seen_at",)
    readonly_fields = (
        "id",
        "account",
        "group",
        "external_id",
        "public_key",
        "ipv4",
        "ipv6",
        *LAST_SEEN,
        *TIMESTAMPS,
    )


@admin.register(RelayGroup)
class RelayGroupAdmin(ChangeLoggedAdmin):
    """Global relay groups (no account) are created here by operators."""

    list_display = ("name", "account", "is_global", "created_by", "inserted_at")
    list_filter = (("account", admin.EmptyFieldListFilter), "created_by")
    search_fields = ("name", "account__slug", "id__exact")
    list_select_related = ("account",)
    ordering = ("-inserted_at",)
    raw_id_fields = ("account",)
    readonly_fields = ("id", "created_by", "created_by_subject", "related_links", *TIMESTAMPS)

    def get_readonly_fields(self, request: HttpRequest, obj: RelayGroup | None = None) -> tuple:
        # The owner of an existing group never changes.
        if obj is not None:
            return (*self.readonly_fields, "account")
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: RelayGroup, form: object, change: bool) -> None:
        if not change:
            obj.created_by = CreatedBy.SYSTEM
            obj.created_by_subject = SYSTEM_SUBJECT
        super().save_model(request, obj, form, change)

    @admin.display(boolean=True, description="global")
    def is_global(self, obj: RelayGroup) -> bool:
        return obj.is_global

    @admin.display(description="related")
    def related_links(self, obj: RelayGroup) -> str:
        return _members_and_tokens(obj, Relay, "Relays", "relay_group")


@admin.register(Relay)
class RelayAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = ("__str__", "group", "account", "ipv4", "ipv6", "port", "last_seen_at")
    list_filter = (("account", admin.EmptyFieldListFilter), "last_seen_version")
    search_fields = ("name", "group__name", "account__slug", "id__exact")
    list_select_related = ("group", "account")
    ordering = ("-last_seen_at",)
    readonly_fields = ("id", "account", "group", "ipv4", "ipv6", "port", *LAST_SEEN, *TIMESTAMPS)


@admin.register(Client)
class ClientAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = ("name", "actor", "account", "verified_at", "last_seen_version", "last_seen_at")
    list_filter = (("verified_at", admin.EmptyFieldListFilter), "last_seen_version")
    search_fields = (
        "name",
        "external_id",
        "account__slug",
        "actor__name",
        "identity__email",
        "id__exact",
    )
    list_select_related = ("actor", "account")
    ordering = ("-last_seen_at",)
    readonly_fields = (
        "id",
        "account",
        "actor",
        "identity",
        "external_id",
        "public_key",
        "ipv4",
        "ipv6",
        "device_serial",
        "device_uuid",
        "identifier_for_vendor",
        "firebase_installation_id",
        "verified_at",
        "verified_by",
        "verified_by_subject",
        *LAST_SEEN,
        *TIMESTAMPS,
    )


@admin.register(NetworkAddress)
class NetworkAddressAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Addresses are never released; deleting one still used by a client or gateway fails at
    commit (composite FK). Delete permission stays so that account deletes can cascade here."""

    list_display = ("address", "type", "account", "inserted_at")
    list_filter = ("type",)
    search_fields = ("address", "account__slug")
    list_select_related = ("account",)
    ordering = ("-inserted_at",)
