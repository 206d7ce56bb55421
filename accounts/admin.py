"""Staff admin for accounts and principals. Secrets are never shown raw nor editable."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.models import (
    Account,
    Actor,
    ActorGroup,
    ActorGroupMembership,
    AuthIdentity,
    AuthProvider,
    Token,
)
from accounts.services.accounts import account_disable, account_enable
from billing.selectors.provisioning import stripe_dashboard_url
from firezone.models import LAST_SEEN_LOCATION
from firezone.web.admin import (
    ChangeLoggedAdmin,
    NoAddAdminMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    change_link,
    changelist_link,
    masked_json,
)

TIMESTAMPS = ("inserted_at", "updated_at")
LAST_SEEN = ("last_seen_user_agent", "last_seen_remote_ip", *LAST_SEEN_LOCATION, "last_seen_at")
DISABLED_REASON_DEFAULT = "Disabled by Firezone staff"
_SLUG_RE = re.compile(r"^[a-z0-9_]{3,100}$")


# --- Account -----------------------------------------------------------------------------------


class _AccountFormBase(forms.ModelForm):
    """Features as checkboxes and limits as optional integers, written back wholesale."""

    class Meta:
        model = Account
        # features/limits are edited through the per-key fields declared below.
        fields = (
            "name",
            "legal_name",
            "slug",
            "disabled_at",
            "disabled_reason",
            "warning",
            "warning_delivery_attempts",
            "warning_last_sent_at",
            "config",
            "metadata",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        features = self.instance.features or {}
        limits = self.instance.limits or {}
        for key in Account.FEATURES:
            self.fields[f"feature_{key}"].initial = bool(features.get(key))
        for key in Account.LIMITS:
            self.fields[f"limit_{key}"].initial = limits.get(key)

    def clean_slug(self) -> str:
        slug = (self.cleaned_data.get("slug") or "").strip().lower()
        if not _SLUG_RE.match(slug):
            raise forms.ValidationError("3-100 characters; letters, numbers and underscores only.")
        return slug

    def save(self, commit: bool = True) -> Account:
        # Replaced wholesale, as the billing sync does (domain.md §1.1).
        self.instance.features = {
            key: self.cleaned_data[f"feature_{key}"] for key in Account.FEATURES
        }
        self.instance.limits = {key: self.cleaned_data[f"limit_{key}"] for key in Account.LIMITS}
        return super().save(commit=commit)


# The admin builds its form from the fieldsets, so the extra fields must be declared on the class.
AccountAdminForm = type(
    "AccountAdminForm",
    (_AccountFormBase,),
    {
        "__module__": __name__,
        **{
            f"feature_{key}": forms.BooleanField(required=False, label=key.replace("_", " "))
            for key in Account.FEATURES
        },
        **{
            f"limit_{key}": forms.IntegerField(
                required=False,
                min_value=0,
                label=key.replace("_", " "),
                help_text="Empty = unlimited.",
            )
            for key in Account.LIMITS
        },
    },
)


class AccountActionForm(ActionForm):
    reason = forms.CharField(
        required=False,
        label="Reason (for disable)",
        widget=forms.TextInput(attrs={"placeholder": DISABLED_REASON_DEFAULT}),
    )


@admin.register(Account)
class AccountAdmin(ChangeLoggedAdmin):
    form = AccountAdminForm
    action_form = AccountActionForm
    actions = ["disable_accounts", "enable_accounts", "open_in_stripe"]
    list_display = ("name", "slug", "plan", "is_active", "disabled_at", "inserted_at")
    list_filter = (
        ("disabled_at", admin.EmptyFieldListFilter),
        "inserted_at",
    )
    search_fields = ("slug", "name", "legal_name", "id__exact")
    ordering = ("-inserted_at",)
    # Disabling and enabling go through the actions (the services close the account's sockets and
    # delete its flows); other edits are recorded in the change log (ChangeLoggedAdmin).
    readonly_fields = (
        "id",
        "plan",
        "related_links",
        "stripe_customer",
        "disabled_at",
        "disabled_reason",
        *TIMESTAMPS,
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "name",
                    "legal_name",
                    "slug",
                    "plan",
                    "related_links",
                    "stripe_customer",
                )
            },
        ),
        (
            "Status",
            {
                "fields": (
                    "disabled_at",
                    "disabled_reason",
                    "warning",
                    "warning_delivery_attempts",
                    "warning_last_sent_at",
                )
            },
        ),
        ("Features", {"fields": tuple(f"feature_{key}" for key in Account.FEATURES)}),
        ("Limits", {"fields": tuple(f"limit_{key}" for key in Account.LIMITS)}),
        ("Configuration and billing metadata", {"fields": ("config", "metadata")}),
        ("Timestamps", {"fields": TIMESTAMPS}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts come with their Everyone group, providers, sites: created by sign-up/billing.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Account | None = None) -> bool:
        # Hard delete (cascades everything) only for already-disabled accounts (domain.md §2.1).
        if obj is not None and obj.disabled_at is None:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Bulk delete would bypass the "disabled first" rule above.
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="plan")
    def plan(self, obj: Account) -> str:
        return obj.type

    @admin.display(boolean=True, description="active")
    def is_active(self, obj: Account) -> bool:
        return obj.is_active

    @admin.display(description="related")
    def related_links(self, obj: Account) -> SafeString | str:
        if obj.pk is None:
            return "-"
        links = [
            changelist_link(Actor, "Actors", account__id__exact=obj.pk),
            changelist_link(AuthIdentity, "Identities", account__id__exact=obj.pk),
            changelist_link(ActorGroup, "Groups", account__id__exact=obj.pk),
            changelist_link(AuthProvider, "Providers", account__id__exact=obj.pk),
            changelist_link(Token, "Tokens", account__id__exact=obj.pk),
        ]
        return SafeString(" | ".join(links))

    @admin.display(description="Stripe customer")
    def stripe_customer(self, obj: Account) -> SafeString | str:
        url = stripe_dashboard_url(obj)
        if url is None:
            return "-"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">Open in Stripe ({})</a>',
            url,
            obj.stripe["customer_id"],
        )

    @admin.action(description="Open in Stripe")
    def open_in_stripe(
        self, request: HttpRequest, queryset: QuerySet[Account]
    ) -> HttpResponseRedirect | None:
        # One account at a time: the customer's page on the Stripe dashboard.
        urls = [url for account in queryset[:2] if (url := stripe_dashboard_url(account))]
        if queryset.count() != 1 or len(urls) != 1:
            self.message_user(
                request, "Select exactly one account with a Stripe customer.", messages.WARNING
            )
            return None
        return HttpResponseRedirect(urls[0])

    @admin.action(description="Disable selected accounts", permissions=["change"])
    def disable_accounts(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        reason = (request.POST.get("reason") or "").strip() or DISABLED_REASON_DEFAULT
        count = 0
        # Through the service: it records the change and deletes the account's flows (§2.1).
        for account in queryset.filter(disabled_at__isnull=True):
            account_disable(account=account, reason=reason)
            self.log_change(request, account, f"Disabled: {reason}")
            count += 1
        self.message_user(request, f"Disabled {count} account(s).", messages.SUCCESS)

    @admin.action(description="Enable selected accounts", permissions=["change"])
    def enable_accounts(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        count = 0
        # Through the service too: the change is recorded (the account's devices may reconnect).
        for account in queryset.filter(disabled_at__isnull=False):
            account_enable(account=account)
            self.log_change(request, account, "Enabled")
            count += 1
        self.message_user(request, f"Enabled {count} account(s).", messages.SUCCESS)


# --- Actors, groups, memberships ---------------------------------------------------------------


class IdentityInline(ReadOnlyInline):
    model = AuthIdentity
    fk_name = "actor"
    fields = ("provider", "provider_identifier", "email", "created_by", "last_seen_at")
    readonly_fields = fields


class MembershipInline(ReadOnlyInline):
    model = ActorGroupMembership
    fk_name = "actor"
    fields = ("group", "last_synced_at")
    readonly_fields = fields


@admin.register(Actor)
class ActorAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = ("name", "type", "account_link", "disabled_at", "last_synced_at", "inserted_at")
    list_filter = (
        "type",
        ("disabled_at", admin.EmptyFieldListFilter),
        ("last_synced_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("name", "account__slug", "identities__email", "id__exact")
    list_select_related = ("account",)
    ordering = ("-inserted_at",)
    # Type and disabling change what the actor's sessions may do: the portal's services do that
    # (disabling deletes its tokens); here only the name is edited. Deleting goes through the
    # change log (its identities, clients, tokens, memberships and flows with it).
    readonly_fields = (
        "id",
        "account",
        "type",
        "disabled_at",
        "last_synced_at",
        "tokens_link",
        *TIMESTAMPS,
    )
    fields = (
        "id",
        "account",
        "name",
        "type",
        "disabled_at",
        "last_synced_at",
        "tokens_link",
        *TIMESTAMPS,
    )
    inlines = [IdentityInline, MembershipInline]

    @admin.display(description="account", ordering="account__slug")
    def account_link(self, obj: Actor) -> SafeString | str:
        return change_link(obj.account)

    @admin.display(description="tokens")
    def tokens_link(self, obj: Actor) -> SafeString | str:
        return changelist_link(Token, "Tokens", actor__id__exact=obj.pk) if obj.pk else "-"


@admin.register(ActorGroup)
class ActorGroupAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = ("name", "type", "account", "provider", "created_by", "last_synced_at")
    list_filter = ("type", "created_by", ("provider", admin.EmptyFieldListFilter))
    search_fields = ("name", "provider_identifier", "account__slug", "id__exact")
    list_select_related = ("account", "provider")
    ordering = ("-inserted_at",)
    readonly_fields = (
        "id",
        "account",
        "type",
        "provider",
        "provider_identifier",
        "last_synced_at",
        "created_by",
        "created_by_subject",
        "members_link",
        *TIMESTAMPS,
    )
    fields = ("name", *readonly_fields)

    @admin.display(description="members")
    def members_link(self, obj: ActorGroup) -> SafeString | str:
        if obj.pk is None:
            return "-"
        return changelist_link(ActorGroupMembership, "Memberships", group__id__exact=obj.pk)


@admin.register(ActorGroupMembership)
class ActorGroupMembershipAdmin(ReadOnlyAdminMixin, ChangeLoggedAdmin):
    list_display = ("actor", "group", "account", "last_synced_at")
    list_filter = (("last_synced_at", admin.EmptyFieldListFilter),)
    search_fields = ("actor__name", "group__name", "account__slug", "actor__identities__email")
    list_select_related = ("actor", "group", "account")


# --- Providers and identities ------------------------------------------------------------------


@admin.register(AuthProvider)
class AuthProviderAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = (
        "name",
        "adapter",
        "account",
        "disabled_at",
        "assigned_default_at",
        "last_synced_at",
        "last_syncs_failed",
    )
    list_filter = (
        "adapter",
        "provisioner",
        ("disabled_at", admin.EmptyFieldListFilter),
        ("sync_disabled_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("name", "account__slug", "id__exact")
    list_select_related = ("account",)
    ordering = ("-inserted_at",)
    # adapter_config/adapter_state hold client secrets, keys and OAuth tokens: masked, read-only.
    exclude = ("adapter_config", "adapter_state")
    readonly_fields = (
        "id",
        "account",
        "adapter",
        "provisioner",
        "adapter_config_masked",
        "adapter_state_masked",
        "created_by",
        "created_by_subject",
        "last_synced_at",
        "last_sync_attempt_at",
        "last_syncs_failed",
        "last_sync_error",
        "sync_disabled_at",
        "sync_error_emailed_at",
        "assigned_default_at",
        # Disabling a provider deletes its sessions: the portal's service does that.
        "disabled_at",
        *TIMESTAMPS,
    )

    @admin.display(description="adapter config")
    def adapter_config_masked(self, obj: AuthProvider) -> SafeString:
        return masked_json(obj.adapter_config)

    @admin.display(description="adapter state")
    def adapter_state_masked(self, obj: AuthProvider) -> SafeString:
        return masked_json(obj.adapter_state)


@admin.register(AuthIdentity)
class AuthIdentityAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = ("provider_identifier", "email", "actor", "provider", "account", "last_seen_at")
    list_filter = ("created_by", "provider__adapter")
    search_fields = ("email", "provider_identifier", "actor__name", "account__slug", "id__exact")
    list_select_related = ("actor", "provider", "account")
    ordering = ("-inserted_at",)
    # provider_state holds password hashes and OIDC tokens.
    exclude = ("provider_state",)
    readonly_fields = (
        "id",
        "account",
        "actor",
        "provider",
        "provider_identifier",
        "provider_state_masked",
        *LAST_SEEN,
        "created_by",
        "created_by_subject",
        "inserted_at",
    )

    @admin.display(description="provider state")
    def provider_state_masked(self, obj: AuthIdentity) -> SafeString:
        return masked_json(obj.provider_state)


# --- Tokens and audit log ----------------------------------------------------------------------


@admin.register(Token)
class TokenAdmin(NoAddAdminMixin, ChangeLoggedAdmin):
    list_display = ("id", "type", "name", "account", "actor", "expires_at", "last_seen_at")
    list_filter = ("type", "created_by", ("expires_at", admin.EmptyFieldListFilter))
    search_fields = ("id__exact", "name", "account__slug", "actor__name", "identity__email")
    list_select_related = ("account", "actor")
    ordering = ("-inserted_at",)
    # Never expose the hash or its salt. Deleting a token (its page or "Delete selected") revokes
    # it through the change log: its sessions are disconnected and its flows deleted. The expiry
    # is read-only: sockets keep the one they connected with, so revoke by deleting.
    exclude = ("secret_salt", "secret_hash")
    readonly_fields = (
        "id",
        "type",
        "expires_at",
        "account",
        "actor",
        "identity",
        "gateway_group",
        "relay_group",
        "remaining_attempts",
        "created_by",
        "created_by_subject",
        "created_by_user_agent",
        "created_by_remote_ip",
        *LAST_SEEN,
        *TIMESTAMPS,
    )
