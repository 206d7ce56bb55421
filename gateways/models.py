"""Data plane: sites, gateways, relay groups, relays, clients and tunnel addresses.

Tables and constraints only (domain.md §1.8-§1.13); behaviour lives in services/selectors.
The composite FKs clients/gateways (ipvX, account_id) -> network_addresses are created in
migration 0002 (Django fields cannot express them).
"""

# NULL is meaningful in this schema (CHECK constraints and partial indexes test IS NULL),
# so nullable string columns are deliberate.
# ruff: noqa: DJ001

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from accounts.models import (
    Account,
    Actor,
    AuthIdentity,
    CreatedBy,
    created_by_field,
    created_by_subject_field,
)
from firezone.models import LastSeenLocation

INTERNET_SITE_NAME = "Internet"


def random_psk_base() -> bytes:
    """Per-device seed of the WireGuard pre-shared keys (domain.md §2.8)."""
    return secrets.token_bytes(32)


class Site(models.Model):
    """A gateway group ("site", table `gateway_groups` in the original, domain.md §1.10)."""

    class ManagedBy(models.TextChoices):
        ACCOUNT = "account"
        SYSTEM = "system"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    managed_by = models.CharField(
        max_length=255, choices=ManagedBy.choices, default=ManagedBy.ACCOUNT
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sites")
    created_by = created_by_field()
    created_by_subject = created_by_subject_field()
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # managed_by is part of the key, so a user site may also be called "Internet".
            models.UniqueConstraint(
                fields=["account", "name", "managed_by"],
                name="gateway_groups_account_id_name_managed_by_index",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_internet_site(self) -> bool:
        return self.name == INTERNET_SITE_NAME and self.managed_by == self.ManagedBy.SYSTEM


class NetworkAddress(models.Model):
    """A tunnel IP allocated in an account (domain.md §1.9); never released.

    The original's PK is (address, account_id); here a surrogate bigint id plus a unique constraint
    on (address, account_id), which is also the target of the composite FKs from clients/gateways.
    """

    class Type(models.TextChoices):
        IPV4 = "ipv4"
        IPV6 = "ipv6"

    address = models.GenericIPAddressField()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="network_addresses")
    type = models.CharField(max_length=255, choices=Type.choices)
    inserted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["address", "account"], name="network_addresses_address_account_id_key"
            ),
        ]

    def __str__(self) -> str:
        return self.address


class DeviceLastSeen(LastSeenLocation):
    """The last connection of a device (gateway, relay or client), written on every connect."""

    last_seen_user_agent = models.CharField(max_length=255)
    last_seen_remote_ip = models.GenericIPAddressField()
    last_seen_version = models.CharField(max_length=255)
    last_seen_at = models.DateTimeField()

    class Meta:
        abstract = True


class TunnelDevice(DeviceLastSeen):
    """A WireGuard peer given tunnel addresses of its account: a gateway or a client."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Device-provided stable id (FIREZONE_ID).
    external_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    public_key = models.CharField(max_length=255)
    psk_base = models.BinaryField(default=random_psk_base)
    ipv4 = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    ipv6 = models.GenericIPAddressField(protocol="IPv6", null=True, blank=True)

    class Meta:
        abstract = True


def unique_tunnel_addresses(table: str) -> list[models.UniqueConstraint]:
    """One tunnel address per device of an account (`<table>_account_id_ipvX_index`)."""
    return [
        models.UniqueConstraint(fields=["account", ip], name=f"{table}_account_id_{ip}_index")
        for ip in ("ipv4", "ipv6")
    ]


class Gateway(TunnelDevice):
    """A data-plane node of a site (domain.md §1.11)."""

    group = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="gateways")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="gateways")
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Not columns: set on listed rows by the portal's pages (presence, version check).
    online: bool
    outdated: bool

    class Meta:
        constraints = [
            # Upsert target on connect.
            models.UniqueConstraint(
                fields=["account", "group", "external_id"],
                name="gateways_account_id_group_id_external_id_index",
            ),
            models.UniqueConstraint(
                fields=["account", "public_key"], name="gateways_account_id_public_key_index"
            ),
            *unique_tunnel_addresses("gateways"),
        ]

    def __str__(self) -> str:
        return self.name


class RelayGroup(models.Model):
    """Relays of one operator: global (account NULL) or self-hosted (domain.md §1.12)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="relay_groups"
    )
    created_by = created_by_field()
    created_by_subject = created_by_subject_field()
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"], name="relay_groups_account_id_name_index"
            ),
            # NULLs are distinct in the index above: global names need their own.
            models.UniqueConstraint(
                fields=["name"], name="relay_groups_name_index", condition=Q(account__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_global(self) -> bool:
        return self.account_id is None


class Relay(DeviceLastSeen):
    """A TURN relay node (domain.md §1.13). The stamp secret lives in presence, not here."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, null=True, blank=True)
    ipv4 = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    ipv6 = models.GenericIPAddressField(protocol="IPv6", null=True, blank=True)
    port = models.IntegerField(default=3478)
    group = models.ForeignKey(RelayGroup, on_delete=models.CASCADE, related_name="relays")
    # NULL for global relays.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="relays"
    )
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Not columns: set on listed rows by the portal's relay pages.
    online: bool
    display_name: str | None

    class Meta:
        constraints = [
            # Upsert targets on connect (expression indexes: use raw SQL ON CONFLICT).
            models.UniqueConstraint(
                F("account"),
                Coalesce("ipv4", "ipv6"),
                F("port"),
                name="relays_unique_address_index",
                condition=Q(account__isnull=False),
            ),
            models.UniqueConstraint(
                Coalesce("ipv4", "ipv6"),
                F("port"),
                name="global_relays_unique_address_index",
                condition=Q(account__isnull=True),
            ),
            # Validated by the app in the original; cheap to guarantee here.
            models.CheckConstraint(
                condition=Q(ipv4__isnull=False) | Q(ipv6__isnull=False),
                name="relays_ipv4_or_ipv6_not_null",
            ),
            models.CheckConstraint(
                condition=Q(port__gte=1, port__lte=65535), name="relays_port_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"{self.ipv4 or self.ipv6}:{self.port}"


class Client(TunnelDevice):
    """An end-user device (domain.md §1.8)."""

    # Hardware identifiers: changing any of them drops the verification.
    device_serial = models.CharField(max_length=255, null=True, blank=True)
    device_uuid = models.CharField(max_length=255, null=True, blank=True)
    identifier_for_vendor = models.CharField(max_length=255, null=True, blank=True)
    firebase_installation_id = models.CharField(max_length=255, null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.CharField(max_length=255, choices=CreatedBy.choices, null=True, blank=True)
    verified_by_subject = models.JSONField(null=True, blank=True)
    actor = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="clients")
    # NULL for service-account clients.
    identity = models.ForeignKey(
        AuthIdentity, on_delete=models.CASCADE, null=True, blank=True, related_name="clients"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="clients")
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Not columns: set on listed rows by the portal's pages (presence, the actor's role).
    online: bool
    role_suffix: str

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    verified_at__isnull=True,
                    verified_by__isnull=True,
                    verified_by_subject__isnull=True,
                )
                | Q(
                    verified_at__isnull=False,
                    verified_by__isnull=False,
                    verified_by_subject__isnull=False,
                ),
                name="verified_fields_set",
            ),
            # Upsert target on connect.
            models.UniqueConstraint(
                fields=["account", "actor", "external_id"],
                name="clients_account_id_actor_id_external_id_index",
            ),
            models.UniqueConstraint(
                fields=["account", "actor", "public_key"],
                name="clients_account_id_actor_id_public_key_index",
            ),
            *unique_tunnel_addresses("clients"),
        ]
        indexes = [
            # The lists' keyset (selectors.clients.client_list): a page is an index range.
            models.Index(
                fields=["account", "-last_seen_at", "-id"], name="clients_acct_last_seen_id_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None
