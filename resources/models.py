"""What is protected and who may reach it: resources, their sites, policies and flows.

Tables and constraints only (domain.md §1.14-§1.17); behaviour lives in services/selectors.
Migration 0002 adds what Django fields cannot say: the composite same-account FKs of policies and
the `internet_resource_in_internet_gg` trigger on resource connections.
"""

# NULL is meaningful in this schema (CHECK constraints and partial indexes test IS NULL),
# so nullable string columns are deliberate.
# ruff: noqa: DJ001

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from accounts.models import (
    Account,
    ActorGroup,
    ActorGroupMembership,
    Token,
    created_by_field,
    created_by_subject_field,
)
from firezone.models import Disableable
from gateways.models import Client, Gateway, Site


class Resource(models.Model):
    """A DNS name, IP, CIDR range or the Internet, reachable through sites (domain.md §1.14)."""

    class Type(models.TextChoices):
        DNS = "dns"
        IP = "ip"
        CIDR = "cidr"
        INTERNET = "internet"

    class IpStack(models.TextChoices):
        DUAL = "dual"
        IPV4_ONLY = "ipv4_only"
        IPV6_ONLY = "ipv6_only"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Stable public id (legacy versioning; kept so old links/ids keep resolving).
    persistent_id = models.UUIDField(default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=255, choices=Type.choices)
    # NULL iff type = internet; CIDRs stored with host bits cleared (the services' job).
    address = models.CharField(max_length=255, null=True, blank=True)
    address_description = models.CharField(max_length=255, null=True, blank=True)
    name = models.CharField(max_length=255)
    ip_stack = models.CharField(max_length=255, choices=IpStack.choices, null=True, blank=True)
    # [{"protocol": "tcp"|"udp"|"icmp", "ports": ["443", "100 - 200"]}]; [] = all traffic.
    filters = models.JSONField(default=list, blank=True)
    created_by = created_by_field()
    created_by_subject = created_by_subject_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="resources")
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(type__in=["cidr", "ip", "dns"], address__isnull=False)
                | Q(type="internet", address__isnull=True),
                name="require_resources_address",
            ),
            models.CheckConstraint(
                # `ip_stack IS NOT NULL` spelled out: the original's bare IN lets NULL through.
                condition=Q(
                    type="dns",
                    ip_stack__isnull=False,
                    ip_stack__in=["dual", "ipv4_only", "ipv6_only"],
                )
                | (~Q(type="dns") & Q(ip_stack__isnull=True)),
                name="resources_ip_stack_not_null",
            ),
            models.UniqueConstraint(
                fields=["account", "type"],
                name="unique_internet_resource_per_account",
                condition=Q(type="internet"),
            ),
            # Target of the composite FK from policies (same-account guarantee).
            models.UniqueConstraint(fields=["account", "id"], name="resources_account_id_id_index"),
            models.UniqueConstraint(fields=["persistent_id"], name="resources_persistent_id_index"),
        ]
        indexes = [
            models.Index(fields=["account", "name"], name="resources_account_id_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_internet(self) -> bool:
        return self.type == self.Type.INTERNET


class ResourceConnection(models.Model):
    """Resource ↔ site placement (domain.md §1.15).

    The original's PK is (resource_id, gateway_group_id); here a surrogate bigint id plus a unique
    constraint on that pair. A DB trigger keeps the Internet resource alone in the Internet site.
    """

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="connections")
    gateway_group = models.ForeignKey(
        Site, on_delete=models.CASCADE, related_name="resource_connections"
    )
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="resource_connections"
    )
    created_by = created_by_field()
    created_by_subject = created_by_subject_field()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["resource", "gateway_group"],
                name="resource_connections_resource_id_gateway_group_id_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_id} @ {self.gateway_group_id}"


class Policy(Disableable, models.Model):
    """Grants an actor group access to a resource, under conditions (domain.md §1.16)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Stable public id (legacy versioning; kept so old links/ids keep resolving).
    persistent_id = models.UUIDField(default=uuid.uuid4, editable=False)
    description = models.TextField(null=True, blank=True)
    actor_group = models.ForeignKey(ActorGroup, on_delete=models.CASCADE, related_name="policies")
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="policies")
    # [{"property": ..., "operator": ..., "values": [str, ...]}], evaluated in order.
    conditions = models.JSONField(default=list, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_by = created_by_field()
    created_by_subject = created_by_subject_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="policies")
    inserted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "policies"
        constraints = [
            # "Policy for the selected Group and Resource already exists"
            models.UniqueConstraint(
                fields=["account", "resource", "actor_group"],
                name="policies_account_id_resource_id_actor_group_id_index",
            ),
            models.UniqueConstraint(fields=["persistent_id"], name="policies_persistent_id_index"),
        ]
        indexes = [
            # The lists' keyset (selectors.policies.ORDERING): a page is an index range.
            models.Index(
                fields=["account", "inserted_at", "id"], name="policies_acct_inserted_id_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.description or f"policy {self.id}"


class Flow(models.Model):
    """An authorization: client X may reach resource R via gateway G until T (domain.md §1.17).

    Immutable: rows are inserted and deleted, never updated.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="flows")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="flows")
    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="flows")
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="flows")
    # The client's session token.
    token = models.ForeignKey(Token, on_delete=models.CASCADE, related_name="flows")
    actor_group_membership = models.ForeignKey(
        ActorGroupMembership, on_delete=models.CASCADE, related_name="flows"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="flows")
    client_remote_ip = models.GenericIPAddressField()
    client_user_agent = models.CharField(max_length=255)
    gateway_remote_ip = models.GenericIPAddressField()
    expires_at = models.DateTimeField()
    inserted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["account", fk, "-inserted_at", "-id"], name=f"flows_acct_{short}_idx"
            )
            for fk, short in [
                ("policy", "policy"),
                ("resource", "resource"),
                ("client", "client"),
                ("gateway", "gateway"),
                ("token", "token"),
                ("actor_group_membership", "membership"),
            ]
        ] + [
            # Expiry job and per-gateway lookups.
            models.Index(
                fields=["expires_at", "account", "gateway"], name="flows_expires_acct_gw_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"flow {self.id}"
