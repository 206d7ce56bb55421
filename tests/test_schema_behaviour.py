"""The database schema of domain.md §1 in behaviour: the constraints, the Internet-resource
trigger and the delete cascades that only the database enforces.

The world of rows: tests/_schema.py.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from accounts.models import (
    Account,
    Actor,
    ActorGroup,
    ActorGroupMembership,
    AuthIdentity,
    AuthProvider,
    Token,
)
from billing.models import ProcessedStripeEvent
from firezone.models import ChangeLog
from gateways.models import Client, Gateway, NetworkAddress, Relay, RelayGroup, Site
from resources.models import Flow, Policy, Resource, ResourceConnection
from tests._schema import SYSTEM, make_account, make_world

pytestmark = pytest.mark.django_db

# --- behaviour ---------------------------------------------------------------------------------


def _violated_constraint(exc: IntegrityError) -> str | None:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


def test_slug_is_unique_case_insensitively() -> None:
    make_account("acme")
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        make_account("ACME")
    assert _violated_constraint(exc.value) == "accounts_slug_index"
    # And lookups ignore case too (citext).
    assert Account.objects.get(slug="AcMe").slug == "acme"


def test_identity_provider_identifier_is_unique_case_insensitively() -> None:
    world = make_world()
    with pytest.raises(IntegrityError), transaction.atomic():
        AuthIdentity.objects.create(
            account=world.account,
            actor=world.actor,
            provider=world.provider,
            provider_identifier="ADA@example.com",
            **SYSTEM,
        )


@pytest.mark.parametrize(
    ("token_type", "owner"),
    [
        (Token.Type.BROWSER, "actor"),  # browser needs actor + identity
        (Token.Type.CLIENT, None),
        (Token.Type.EMAIL, "actor"),
        (Token.Type.API_CLIENT, None),
        (Token.Type.GATEWAY_GROUP, "actor"),
        (Token.Type.RELAY_GROUP, None),
    ],
)
def test_token_without_its_association_violates_check(token_type: str, owner: str | None) -> None:
    world = make_world()
    extra = {"actor": world.actor} if owner == "actor" else {}
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        Token.objects.create(
            account=world.account,
            type=token_type,
            secret_salt="s",
            secret_hash="h",
            **extra,
            **SYSTEM,
        )
    assert _violated_constraint(exc.value) == "assoc_not_null"


def test_tokens_with_their_associations_are_accepted() -> None:
    world = make_world()
    global_relays = RelayGroup.objects.create(name="global", **SYSTEM)
    Token.objects.create(
        type=Token.Type.RELAY_GROUP,
        relay_group=global_relays,
        secret_salt="s",
        secret_hash="h",
        **SYSTEM,
    )
    Token.objects.create(
        account=world.account,
        type=Token.Type.GATEWAY_GROUP,
        gateway_group=world.site,
        secret_salt="s",
        secret_hash="h",
        **SYSTEM,
    )


def test_internet_resource_only_in_internet_site() -> None:
    world = make_world()
    # The Internet resource in a normal site.
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        ResourceConnection.objects.create(
            account=world.account,
            resource=world.internet_resource,
            gateway_group=world.site,
            **SYSTEM,
        )
    assert _violated_constraint(exc.value) == "internet_resource_in_internet_site"
    assert "Only internet resource type is allowed" in str(exc.value)
    # A normal resource in the Internet site.
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        ResourceConnection.objects.create(
            account=world.account,
            resource=world.resource,
            gateway_group=world.internet_site,
            **SYSTEM,
        )
    assert _violated_constraint(exc.value) == "internet_resource_in_internet_site"
    # Moving an existing connection is checked too (UPDATE OF gateway_group_id).
    with pytest.raises(IntegrityError), transaction.atomic():
        ResourceConnection.objects.filter(resource=world.resource).update(
            gateway_group=world.internet_site
        )
    # A user site that is merely called "Internet" is a normal site.
    user_internet = Site.objects.create(account=world.account, name="Internet", **SYSTEM)
    ResourceConnection.objects.create(
        account=world.account, resource=world.resource, gateway_group=user_internet, **SYSTEM
    )


def test_one_internet_resource_per_account() -> None:
    world = make_world()
    with pytest.raises(IntegrityError), transaction.atomic():
        Resource.objects.create(
            account=world.account, name="Internet 2", type=Resource.Type.INTERNET, **SYSTEM
        )


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"type": "dns", "address": None, "ip_stack": "dual"}, "require_resources_address"),
        ({"type": "internet", "address": "x.example.com"}, "require_resources_address"),
        ({"type": "dns", "address": "a.example.com"}, "resources_ip_stack_not_null"),
        ({"type": "ip", "address": "10.0.0.1", "ip_stack": "dual"}, "resources_ip_stack_not_null"),
    ],
)
def test_resource_checks(fields: dict, constraint: str) -> None:
    account = make_account()
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        Resource.objects.create(account=account, name="r", **fields, **SYSTEM)
    assert _violated_constraint(exc.value) == constraint


def test_policy_group_and_resource_must_share_the_policy_account() -> None:
    world = make_world("acme")
    other = make_world("other")
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        Policy.objects.create(
            account=world.account, actor_group=other.group, resource=world.resource, **SYSTEM
        )
    assert _violated_constraint(exc.value) == "policies_actor_group_id_fkey"
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        Policy.objects.create(
            account=world.account,
            actor_group=world.group,
            resource=other.internet_resource,
            **SYSTEM,
        )
    assert _violated_constraint(exc.value) == "policies_resource_id_fkey"


def test_synced_group_needs_both_provider_fields() -> None:
    world = make_world()
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        ActorGroup.objects.create(
            account=world.account,
            name="Engineering",
            type=ActorGroup.Type.STATIC,
            provider=world.provider,
            **SYSTEM,
        )
    assert _violated_constraint(exc.value) == "provider_fields_not_null"


def test_client_verification_fields_go_together() -> None:
    world = make_world()
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        Client.objects.filter(pk=world.client.pk).update(verified_at=timezone.now())
    assert _violated_constraint(exc.value) == "verified_fields_set"


def test_change_log_data_must_match_operation() -> None:
    ChangeLog.objects.create(
        lsn=1, account_id=uuid.uuid4(), table="actors", op="insert", data={"id": "x"}
    )
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        ChangeLog.objects.create(
            lsn=2, account_id=uuid.uuid4(), table="actors", op="delete", data={"id": "x"}
        )
    assert _violated_constraint(exc.value) == "valid_data_for_operation"


def test_relay_needs_an_address() -> None:
    group = RelayGroup.objects.create(name="global", **SYSTEM)
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        Relay.objects.create(
            group=group,
            last_seen_user_agent="relay/1.4.0",
            last_seen_remote_ip="198.51.100.9",
            last_seen_version="1.4.0",
            last_seen_at=timezone.now(),
        )
    assert _violated_constraint(exc.value) == "relays_ipv4_or_ipv6_not_null"


def test_stripe_event_id_format() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        ProcessedStripeEvent.objects.create(
            stripe_event_id="nope", event_type="customer.created", event_created_at=timezone.now()
        )


def test_network_address_in_use_cannot_be_deleted_alone() -> None:
    world = make_world()
    with pytest.raises(IntegrityError), transaction.atomic():
        NetworkAddress.objects.filter(account=world.account, address="100.64.0.3").delete()
        # The composite FK is deferred: force the check now.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


# Every account-scoped model, all of which must be emptied by an account delete.
ACCOUNT_SCOPED = [
    Actor,
    AuthProvider,
    AuthIdentity,
    ActorGroup,
    ActorGroupMembership,
    Token,
    Site,
    NetworkAddress,
    Gateway,
    Client,
    Resource,
    ResourceConnection,
    Policy,
    Flow,
]


def test_database_cascades_an_account_delete() -> None:
    world = make_world("acme")
    survivor = make_world("other")
    ChangeLog.objects.create(
        lsn=10, account_id=world.account.id, table="accounts", op="insert", data={"x": 1}
    )
    # Raw SQL: only the database's ON DELETE rules act here, not Django's collector.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_account WHERE id = %s", [world.account.id])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for model in ACCOUNT_SCOPED:
        assert not model._default_manager.filter(account_id=world.account.id).exists(), (
            model.__name__
        )
        assert model._default_manager.filter(account_id=survivor.account.id).exists(), (
            model.__name__
        )
    # The audit log is kept.
    assert ChangeLog.objects.filter(account_id=world.account.id).count() == 1


def test_orm_delete_of_an_account_works_too() -> None:
    world = make_world()
    world.account.delete()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for model in ACCOUNT_SCOPED:
        assert not model._default_manager.exists(), model.__name__


@pytest.mark.parametrize(
    ("deleted", "gone", "kept"),
    [
        # §1.22: a provider delete removes identities (and their clients/tokens) but not actors.
        ("provider", [AuthIdentity, Client, Token, Flow], [Actor, ActorGroup, Policy]),
        ("site", [Gateway, Flow], [Resource, Client, Token]),
        ("group", [ActorGroupMembership, Policy, Flow], [Actor, Resource]),
        ("token", [Flow], [Client, Actor]),
        ("resource", [Policy, Flow], [Site, ActorGroup]),
    ],
)
def test_database_cascades_follow_the_cascade_map(
    deleted: str, gone: list[type[Model]], kept: list[type[Model]]
) -> None:
    world = make_world()
    row = getattr(world, deleted)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {row._meta.db_table} WHERE id = %s",
            [row.pk],
        )
    for model in gone:
        assert not model._default_manager.exists(), model.__name__
    for model in kept:
        assert model._default_manager.exists(), model.__name__
