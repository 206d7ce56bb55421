"""Tenants and principals: accounts, actors, groups, identity providers, identities, tokens.

Tables and constraints only (domain.md §1.1-§1.7, §1.18); behaviour lives in services/selectors.
Deletion is always a hard delete: FKs cascade in Python (`on_delete`) *and* in the database
(`DbOnDelete` operations in the migrations), following the cascade map of domain.md §1.22.
"""

# NULL is meaningful in this schema (CHECK constraints and partial indexes test IS NULL),
# so nullable string columns are deliberate.
# ruff: noqa: DJ001

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KeyTextTransform

from accounts import providers
from accounts.features import ACCOUNT_FEATURES
from accounts.tokens import TokenType
from firezone.fields import CITextField
from firezone.models import Disableable, LastSeenLocation


class CreatedBy(models.TextChoices):
    """Who created a row (domain.md §0.5); one shared set for every table (§8.11)."""

    SYSTEM = "system"
    PROVIDER = "provider"
    IDENTITY = "identity"
    ACTOR = "actor"


def created_by_field() -> models.CharField:
    return models.CharField(max_length=255, choices=CreatedBy.choices)


def created_by_subject_field() -> models.JSONField:
    # {"name": str, "email": str | None}
    return models.JSONField(null=True, blank=True)


class Account(Disableable, models.Model):
    """A tenant (domain.md §1.1). `features`/`limits` are replaced wholesale, config merged."""

    # Keys of the `features` (booleans, missing = off) and `limits` (int >= 0, null = unlimited)
    # objects; the billing sync keeps only these.
    FEATURES = ACCOUNT_FEATURES
    LIMITS = (
        "users_count",
        "monthly_active_users_count",
        "service_accounts_count",
        "gateway_groups_count",
        "account_admin_users_count",
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    legal_name = models.CharField(max_length=255)
    slug = CITextField(max_length=100)
    features = models.JSONField(default=dict, blank=True)
    limits = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    warning = models.TextField(null=True, blank=True)
    warning_delivery_attempts = models.IntegerField(null=True, blank=True, default=0)
    warning_last_sent_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # citext: unique regardless of case.
            models.UniqueConstraint(fields=["slug"], name="accounts_slug_index"),
            # Services always generate a slug; an empty one would silently collide.
            models.CheckConstraint(condition=~Q(slug=""), name="accounts_slug_not_blank"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def stripe(self) -> dict:
        return (self.metadata or {}).get("stripe") or {}

    @property
    def type(self) -> str:
        """Billing plan name: Starter (no Stripe product), Team, Enterprise."""
        return self.stripe.get("product_name") or "Starter"


class Actor(Disableable, models.Model):
    """A principal of an account: user, admin, service account or API client (domain.md §1.2)."""

    class Type(models.TextChoices):
        ACCOUNT_USER = "account_user"
        ACCOUNT_ADMIN_USER = "account_admin_user"
        SERVICE_ACCOUNT = "service_account"
        API_CLIENT = "api_client"

    USER_TYPES = (Type.ACCOUNT_USER, Type.ACCOUNT_ADMIN_USER)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=255, choices=Type.choices)
    name = models.CharField(max_length=255)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="actors")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Not a column: set on listed rows by the portal's group pages.
    role_suffix: str

    class Meta:
        indexes = [
            models.Index(fields=["account", "type"], name="actors_account_id_type_index"),
            models.Index(
                fields=["last_synced_at"],
                name="actors_last_synced_at_index",
                condition=Q(last_synced_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"

    @property
    def is_admin(self) -> bool:
        return self.type == self.Type.ACCOUNT_ADMIN_USER

    @property
    def is_user(self) -> bool:
        """Human users (regular or admin); these count as seats and join "Everyone"."""
        return self.type in self.USER_TYPES

    @property
    def is_service_account(self) -> bool:
        return self.type == self.Type.SERVICE_ACCOUNT

    @property
    def is_api_client(self) -> bool:
        return self.type == self.Type.API_CLIENT

    @property
    def is_synced(self) -> bool:
        """Managed by IdP directory sync (its name comes from the IdP)."""
        return self.last_synced_at is not None


class AuthProvider(Disableable, models.Model):
    """An identity provider configured for an account (domain.md §1.5)."""

    class Adapter(models.TextChoices):
        EMAIL = "email"
        OPENID_CONNECT = "openid_connect"
        GOOGLE_WORKSPACE = "google_workspace"
        MICROSOFT_ENTRA = "microsoft_entra"
        OKTA = "okta"
        JUMPCLOUD = "jumpcloud"
        MOCK = "mock"
        USERPASS = "userpass"

    class Provisioner(models.TextChoices):
        MANUAL = "manual"
        JUST_IN_TIME = "just_in_time"
        CUSTOM = "custom"

    # One of each per account (`auth_providers_account_id_adapter_index`).
    SINGLETON_ADAPTERS = providers.SINGLETON_ADAPTERS
    # Directory-sync adapters, one of each kind per account (`unique_account_adapter_index`).
    SYNC_ADAPTERS = providers.SYNC_ADAPTERS

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    adapter = models.CharField(max_length=255, choices=Adapter.choices)
    provisioner = models.CharField(max_length=255, choices=Provisioner.choices)
    # Secret: holds client secrets and service-account keys.
    adapter_config = models.JSONField(default=dict, blank=True)
    # Secret: OAuth tokens of the admin who connected the IdP, or {"status": ...}.
    adapter_state = models.JSONField(default=dict, blank=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="auth_providers")
    created_by = created_by_field()
    created_by_subject = created_by_subject_field()
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_syncs_failed = models.IntegerField(null=True, blank=True, default=0)
    last_sync_error = models.TextField(null=True, blank=True)
    sync_disabled_at = models.DateTimeField(null=True, blank=True)
    sync_error_emailed_at = models.DateTimeField(null=True, blank=True)
    # When the last sync run ended, however it ended (directory_sync.services.runs): the back-off
    # of §2.2 counts from it, because a counted failure nulls `last_synced_at` (§2.7).
    last_sync_attempt_at = models.DateTimeField(null=True, blank=True)
    assigned_default_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # "this provider is already enabled"
            models.UniqueConstraint(
                fields=["account", "adapter"],
                name="auth_providers_account_id_adapter_index",
                condition=Q(adapter__in=["email", "userpass"]),
            ),
            # "this provider is already connected": same OIDC client id twice.
            models.UniqueConstraint(
                F("account"),
                F("adapter"),
                KeyTextTransform("client_id", "adapter_config"),
                name="auth_providers_account_id_oidc_adapter_index",
                condition=Q(adapter="openid_connect"),
            ),
            # "only one of this adapter type may be enabled per account"
            models.UniqueConstraint(
                fields=["account", "adapter"],
                name="unique_account_adapter_index",
                condition=Q(
                    adapter__in=["mock", "google_workspace", "okta", "jumpcloud", "microsoft_entra"]
                ),
            ),
            # "only one provider may be assigned default for client authentication"
            models.UniqueConstraint(
                fields=["account"],
                name="auth_providers_account_id_assigned_default_at_index",
                condition=Q(disabled_at__isnull=True, assigned_default_at__isnull=False),
            ),
        ]
        indexes = [
            # Cross-account jobs pick enabled providers of one adapter.
            models.Index(
                fields=["adapter"],
                name="auth_providers_adapter_index",
                condition=Q(disabled_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.adapter})"

    @property
    def is_sync_adapter(self) -> bool:
        return self.adapter in self.SYNC_ADAPTERS

    @property
    def is_default(self) -> bool:
        return self.assigned_default_at is not None


class ActorGroup(models.Model):
    """A group of actors: managed ("Everyone"), static, or synced from an IdP (domain.md §1.3)."""

    class Type(models.TextChoices):
        MANAGED = "managed"
        STATIC = "static"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=255, choices=Type.choices)
    provider = models.ForeignKey(
        AuthProvider,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="actor_groups",
    )
    # IdP group id, e.g. "G:<id>", "OU:<id>".
    provider_identifier = models.CharField(max_length=255, null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_by = created_by_field()
    created_by_subject = created_by_subject_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="actor_groups")
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(provider__isnull=False, provider_identifier__isnull=False)
                | Q(provider__isnull=True, provider_identifier__isnull=True),
                name="provider_fields_not_null",
            ),
            # Non-synced groups (static and managed) have unique names; synced ones may share.
            models.UniqueConstraint(
                fields=["account", "name"],
                name="actor_groups_account_id_name_index",
                condition=Q(provider__isnull=True, provider_identifier__isnull=True),
            ),
            # Directory-sync upsert target.
            models.UniqueConstraint(
                fields=["account", "provider", "provider_identifier"],
                name="actor_groups_account_id_provider_id_provider_identifier_index",
                condition=Q(provider__isnull=False, provider_identifier__isnull=False),
            ),
            # Target of the composite FK from policies (same-account guarantee).
            models.UniqueConstraint(
                fields=["account", "id"], name="actor_groups_account_id_id_index"
            ),
        ]
        indexes = [
            models.Index(
                fields=["last_synced_at"],
                name="actor_groups_last_synced_idx",
                condition=Q(last_synced_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_managed(self) -> bool:
        return self.type == self.Type.MANAGED

    @property
    def is_synced(self) -> bool:
        return self.provider_id is not None

    @property
    def is_editable(self) -> bool:
        return self.provider_id is None and self.type == self.Type.STATIC


class ActorGroupMembership(models.Model):
    """Actor ↔ group (domain.md §1.4). Always hard-deleted; flows reference it by id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    actor = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="memberships")
    group = models.ForeignKey(ActorGroup, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="actor_group_memberships"
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Upsert target (ON CONFLICT (actor_id, group_id)).
            models.UniqueConstraint(
                fields=["actor", "group"], name="actor_group_memberships_actor_id_group_id_index"
            ),
        ]
        indexes = [
            models.Index(fields=["account", "group", "actor"], name="memberships_acct_group_actor"),
            models.Index(
                fields=["last_synced_at"],
                name="memberships_last_synced_idx",
                condition=Q(last_synced_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.actor_id} in {self.group_id}"


class LastSeen(LastSeenLocation):
    """Last use of a sign-in (identity) or a secret (token): unknown until first seen."""

    last_seen_user_agent = models.CharField(max_length=255, null=True, blank=True)
    last_seen_remote_ip = models.GenericIPAddressField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class AuthIdentity(LastSeen):
    """An actor's identity at one provider (domain.md §1.6)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    actor = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="identities")
    provider = models.ForeignKey(AuthProvider, on_delete=models.CASCADE, related_name="identities")
    # Email for email/userpass providers; the IdP subject or user id otherwise.
    provider_identifier = CITextField()
    email = CITextField(null=True, blank=True)
    # Secret: password hash, OIDC tokens, email sign-in bookkeeping.
    provider_state = models.JSONField(default=dict, blank=True)
    created_by = created_by_field()
    created_by_subject = created_by_subject_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="auth_identities")
    inserted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "auth identities"
        constraints = [
            # Upsert target; citext makes it case-insensitive.
            models.UniqueConstraint(
                fields=["account", "provider", "provider_identifier"],
                name="auth_identities_account_id_provider_id_provider_identifier_idx",
            ),
            models.UniqueConstraint(
                fields=["account", "provider", "email", "provider_identifier"],
                name="auth_identities_acct_id_provider_id_email_prov_ident_unique_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.email or self.provider_identifier


class Token(LastSeen):
    """An authentication secret of any principal kind (domain.md §1.7, format in §2.7)."""

    # `accounts.tokens.TokenType`: the secrets' module defines them without models.
    Type = TokenType

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=255, choices=Type.choices)
    name = models.CharField(max_length=255, null=True, blank=True)
    # Secret: hex sha3-256(nonce || fragment || salt) and its salt.
    secret_salt = models.CharField(max_length=255)
    secret_hash = models.CharField(max_length=255)
    remaining_attempts = models.IntegerField(null=True, blank=True)
    identity = models.ForeignKey(
        AuthIdentity, on_delete=models.CASCADE, null=True, blank=True, related_name="tokens"
    )
    actor = models.ForeignKey(
        Actor, on_delete=models.CASCADE, null=True, blank=True, related_name="tokens"
    )
    # The gateways app depends on accounts: these two FKs are added in a later migration.
    relay_group = models.ForeignKey(
        "gateways.RelayGroup",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tokens",
    )
    gateway_group = models.ForeignKey(
        "gateways.Site", on_delete=models.CASCADE, null=True, blank=True, related_name="tokens"
    )
    # NULL only for tokens of global relay groups.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="tokens"
    )
    created_by = created_by_field()
    created_by_subject = created_by_subject_field()
    created_by_user_agent = models.CharField(max_length=255, null=True, blank=True)
    created_by_remote_ip = models.GenericIPAddressField(null=True, blank=True)
    # NULL = never expires (gateway and relay tokens).
    expires_at = models.DateTimeField(null=True, blank=True)
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Each type needs its owner; the only enforcement of the per-type associations (§8.2).
            models.CheckConstraint(
                condition=Q(type="browser", actor__isnull=False, identity__isnull=False)
                | Q(type="client", actor__isnull=False)
                | Q(type="email", actor__isnull=False, identity__isnull=False)
                | Q(type="api_client", actor__isnull=False)
                | Q(type="relay_group", relay_group__isnull=False)
                | Q(type="gateway_group", gateway_group__isnull=False),
                name="assoc_not_null",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "type"], name="tokens_account_id_type_index"),
        ]

    def __str__(self) -> str:
        return f"{self.type} token {self.id}"
