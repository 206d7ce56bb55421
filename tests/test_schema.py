"""The database schema of domain.md §1: tables, unique/partial indexes, CHECKs, FK delete rules,
the Internet-resource trigger, and a few behavioural checks that only the database enforces."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import (
    Account,
    Actor,
    ActorGroup,
    ActorGroupMembership,
    AuthIdentity,
    AuthProvider,
    CreatedBy,
    Token,
)
from billing.models import ProcessedStripeEvent
from firezone.models import ChangeLog
from gateways.models import Client, Gateway, NetworkAddress, Relay, RelayGroup, Site
from resources.models import Flow, Policy, Resource, ResourceConnection

pytestmark = pytest.mark.django_db

SYSTEM = {"created_by": CreatedBy.SYSTEM, "created_by_subject": {"name": "System", "email": None}}

# --- expected schema ---------------------------------------------------------------------------

# table -> {constraint/index name: partial?}
UNIQUE = {
    "accounts_account": {"accounts_slug_index": False},
    "accounts_actorgroup": {
        "actor_groups_account_id_name_index": True,
        "actor_groups_account_id_provider_id_provider_identifier_index": True,
        "actor_groups_account_id_id_index": False,
    },
    "accounts_actorgroupmembership": {"actor_group_memberships_actor_id_group_id_index": False},
    "accounts_authprovider": {
        "auth_providers_account_id_adapter_index": True,
        "auth_providers_account_id_oidc_adapter_index": True,
        "unique_account_adapter_index": True,
        "auth_providers_account_id_assigned_default_at_index": True,
    },
    "accounts_authidentity": {
        "auth_identities_account_id_provider_id_provider_identifier_idx": False,
        "auth_identities_acct_id_provider_id_email_prov_ident_unique_idx": False,
    },
    "gateways_site": {"gateway_groups_account_id_name_managed_by_index": False},
    "gateways_networkaddress": {"network_addresses_address_account_id_key": False},
    "gateways_gateway": {
        "gateways_account_id_group_id_external_id_index": False,
        "gateways_account_id_public_key_index": False,
        "gateways_account_id_ipv4_index": False,
        "gateways_account_id_ipv6_index": False,
    },
    "gateways_relaygroup": {
        "relay_groups_account_id_name_index": False,
        "relay_groups_name_index": True,
    },
    "gateways_relay": {
        "relays_unique_address_index": True,
        "global_relays_unique_address_index": True,
    },
    "gateways_client": {
        "clients_account_id_actor_id_external_id_index": False,
        "clients_account_id_actor_id_public_key_index": False,
        "clients_account_id_ipv4_index": False,
        "clients_account_id_ipv6_index": False,
    },
    "resources_resource": {
        "unique_internet_resource_per_account": True,
        "resources_account_id_id_index": False,
        "resources_persistent_id_index": False,
    },
    "resources_resourceconnection": {
        "resource_connections_resource_id_gateway_group_id_key": False
    },
    "resources_policy": {
        "policies_account_id_resource_id_actor_group_id_index": False,
        "policies_persistent_id_index": False,
    },
    "resources_flow": {},
    "accounts_actor": {},
    "accounts_token": {},
    "accounts_changelog": {},
    "billing_processedstripeevent": {},
}

CHECKS = {
    "accounts_account": {"accounts_slug_not_blank"},
    "accounts_actorgroup": {"provider_fields_not_null"},
    "accounts_token": {"assoc_not_null"},
    "accounts_changelog": {"valid_data_for_operation"},
    "gateways_client": {"verified_fields_set"},
    "gateways_relay": {"relays_ipv4_or_ipv6_not_null", "relays_port_range"},
    "resources_resource": {"require_resources_address", "resources_ip_stack_not_null"},
    "billing_processedstripeevent": {
        "processed_stripe_events_event_id_format",
        "processed_stripe_events_customer_id_format",
    },
}

INDEXES = {
    "accounts_actor": {"actors_account_id_type_index", "actors_last_synced_at_index"},
    "accounts_actorgroup": {"actor_groups_last_synced_idx"},
    "accounts_actorgroupmembership": {
        "memberships_acct_group_actor",
        "memberships_last_synced_idx",
    },
    "accounts_authprovider": {"auth_providers_adapter_index"},
    "accounts_token": {"tokens_account_id_type_index"},
    "gateways_client": {"clients_acct_last_seen_idx"},
    "resources_resource": {"resources_account_id_name_idx"},
    "resources_flow": {
        "flows_acct_policy_idx",
        "flows_acct_resource_idx",
        "flows_acct_client_idx",
        "flows_acct_gateway_idx",
        "flows_acct_token_idx",
        "flows_acct_membership_idx",
        "flows_expires_acct_gw_idx",
    },
    "billing_processedstripeevent": {
        "stripe_events_cus_type_idx",
        "stripe_events_cus_created_idx",
    },
}

# (table, FK columns) -> (referenced table, pg_constraint.confdeltype): c = CASCADE, a = NO ACTION.
C, NO_ACTION = "c", "a"
FOREIGN_KEYS = {
    ("accounts_actor", ("account_id",)): ("accounts_account", C),
    ("accounts_authprovider", ("account_id",)): ("accounts_account", C),
    ("accounts_actorgroup", ("account_id",)): ("accounts_account", C),
    ("accounts_actorgroup", ("provider_id",)): ("accounts_authprovider", C),
    ("accounts_actorgroupmembership", ("account_id",)): ("accounts_account", C),
    ("accounts_actorgroupmembership", ("actor_id",)): ("accounts_actor", C),
    ("accounts_actorgroupmembership", ("group_id",)): ("accounts_actorgroup", C),
    ("accounts_authidentity", ("account_id",)): ("accounts_account", C),
    ("accounts_authidentity", ("actor_id",)): ("accounts_actor", C),
    ("accounts_authidentity", ("provider_id",)): ("accounts_authprovider", C),
    ("accounts_token", ("account_id",)): ("accounts_account", C),
    ("accounts_token", ("actor_id",)): ("accounts_actor", C),
    ("accounts_token", ("identity_id",)): ("accounts_authidentity", C),
    ("accounts_token", ("relay_group_id",)): ("gateways_relaygroup", C),
    ("accounts_token", ("gateway_group_id",)): ("gateways_site", C),
    ("gateways_site", ("account_id",)): ("accounts_account", C),
    ("gateways_networkaddress", ("account_id",)): ("accounts_account", C),
    ("gateways_gateway", ("account_id",)): ("accounts_account", C),
    ("gateways_gateway", ("group_id",)): ("gateways_site", C),
    ("gateways_gateway", ("ipv4", "account_id")): ("gateways_networkaddress", NO_ACTION),
    ("gateways_gateway", ("ipv6", "account_id")): ("gateways_networkaddress", NO_ACTION),
    ("gateways_relaygroup", ("account_id",)): ("accounts_account", C),
    ("gateways_relay", ("account_id",)): ("accounts_account", C),
    ("gateways_relay", ("group_id",)): ("gateways_relaygroup", C),
    ("gateways_client", ("account_id",)): ("accounts_account", C),
    ("gateways_client", ("actor_id",)): ("accounts_actor", C),
    ("gateways_client", ("identity_id",)): ("accounts_authidentity", C),
    ("gateways_client", ("ipv4", "account_id")): ("gateways_networkaddress", NO_ACTION),
    ("gateways_client", ("ipv6", "account_id")): ("gateways_networkaddress", NO_ACTION),
    ("resources_resource", ("account_id",)): ("accounts_account", C),
    ("resources_resourceconnection", ("account_id",)): ("accounts_account", C),
    ("resources_resourceconnection", ("resource_id",)): ("resources_resource", C),
    ("resources_resourceconnection", ("gateway_group_id",)): ("gateways_site", C),
    ("resources_policy", ("account_id",)): ("accounts_account", C),
    ("resources_policy", ("actor_group_id",)): ("accounts_actorgroup", C),
    ("resources_policy", ("resource_id",)): ("resources_resource", C),
    ("resources_policy", ("actor_group_id", "account_id")): ("accounts_actorgroup", C),
    ("resources_policy", ("resource_id", "account_id")): ("resources_resource", C),
    ("resources_flow", ("account_id",)): ("accounts_account", C),
    ("resources_flow", ("policy_id",)): ("resources_policy", C),
    ("resources_flow", ("client_id",)): ("gateways_client", C),
    ("resources_flow", ("gateway_id",)): ("gateways_gateway", C),
    ("resources_flow", ("resource_id",)): ("resources_resource", C),
    ("resources_flow", ("token_id",)): ("accounts_token", C),
    ("resources_flow", ("actor_group_membership_id",)): ("accounts_actorgroupmembership", C),
}


def _constraints(table: str) -> dict[str, dict]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


def _partial_indexes(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [table, "% WHERE %"],
        )
        return {row[0] for row in cursor.fetchall()}


def _foreign_keys() -> dict[tuple[str, tuple[str, ...]], list[tuple[str, str]]]:
    """(table, columns in key order) -> [(referenced table, confdeltype)] for our apps' tables."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, f.relname, c.confdeltype,
                   array_agg(a.attname::text ORDER BY k.ord)
            FROM pg_constraint c
            JOIN pg_class t ON t.oid = c.conrelid
            JOIN pg_class f ON f.oid = c.confrelid
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.contype = 'f'
              AND t.relname ~ '^(accounts|gateways|resources|billing)_'
            GROUP BY c.oid, t.relname, f.relname, c.confdeltype
            """
        )
        found: dict[tuple[str, tuple[str, ...]], list[tuple[str, str]]] = {}
        for table, target, deltype, columns in cursor.fetchall():
            found.setdefault((table, tuple(columns)), []).append((target, deltype))
        return found


# --- structure ---------------------------------------------------------------------------------


def test_every_table_exists() -> None:
    tables = set(connection.introspection.table_names())
    expected = set(UNIQUE) | set(CHECKS) | set(INDEXES)
    assert expected <= tables, expected - tables
    assert len(expected) == 19  # every table of §1.1-§1.19


@pytest.mark.parametrize("table", sorted(UNIQUE))
def test_unique_constraints_and_partial_indexes(table: str) -> None:
    constraints = _constraints(table)
    partial = _partial_indexes(table)
    for name, is_partial in UNIQUE[table].items():
        assert name in constraints, f"{table}: missing {name}"
        assert constraints[name]["unique"], f"{table}: {name} is not unique"
        assert (name in partial) == is_partial, f"{table}: {name} partial={not is_partial}"


@pytest.mark.parametrize("table", sorted(CHECKS))
def test_check_constraints(table: str) -> None:
    constraints = _constraints(table)
    for name in CHECKS[table]:
        assert name in constraints and constraints[name]["check"], f"{table}: missing {name}"


@pytest.mark.parametrize("table", sorted(INDEXES))
def test_indexes(table: str) -> None:
    constraints = _constraints(table)
    for name in INDEXES[table]:
        assert name in constraints and constraints[name]["index"], f"{table}: missing {name}"


def test_no_deleted_at_columns() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'deleted_at'"
            " AND table_name ~ '^(accounts|gateways|resources|billing)_'"
        )
        assert cursor.fetchall() == []


def test_foreign_keys_and_delete_rules() -> None:
    found = _foreign_keys()
    for key, (target, deltype) in FOREIGN_KEYS.items():
        assert found.get(key) == [(target, deltype)], f"{key}: {found.get(key)}"
    # Nothing unexpected, in particular no FK left with Django's default NO ACTION.
    assert set(found) == set(FOREIGN_KEYS), set(found) ^ set(FOREIGN_KEYS)


def test_change_logs_have_no_foreign_key() -> None:
    assert not any(table == "accounts_changelog" for table, _ in _foreign_keys())


def test_internet_resource_trigger_installed() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'resources_resourceconnection'::regclass"
            " AND NOT tgisinternal"
        )
        assert [row[0] for row in cursor.fetchall()] == ["internet_resource_in_internet_gg"]


def test_models_match_migrations() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)


# --- behaviour ---------------------------------------------------------------------------------


@dataclass
class World:
    account: Account
    actor: Actor
    provider: AuthProvider
    identity: AuthIdentity
    group: ActorGroup
    membership: ActorGroupMembership
    token: Token
    site: Site
    internet_site: Site
    gateway: Gateway
    client: Client
    resource: Resource
    internet_resource: Resource
    policy: Policy
    flow: Flow


def make_account(slug: str = "acme") -> Account:
    return Account.objects.create(name=slug.title(), legal_name=slug.title(), slug=slug)


def make_world(slug: str = "acme") -> World:
    account = make_account(slug)
    actor = Actor.objects.create(account=account, name="Ada", type=Actor.Type.ACCOUNT_ADMIN_USER)
    provider = AuthProvider.objects.create(
        account=account,
        name="Email",
        adapter=AuthProvider.Adapter.EMAIL,
        provisioner=AuthProvider.Provisioner.MANUAL,
        **SYSTEM,
    )
    identity = AuthIdentity.objects.create(
        account=account,
        actor=actor,
        provider=provider,
        provider_identifier="ada@example.com",
        email="ada@example.com",
        **SYSTEM,
    )
    group = ActorGroup.objects.create(
        account=account, name="Everyone", type=ActorGroup.Type.MANAGED, **SYSTEM
    )
    membership = ActorGroupMembership.objects.create(account=account, actor=actor, group=group)
    token = Token.objects.create(
        account=account,
        type=Token.Type.CLIENT,
        actor=actor,
        identity=identity,
        secret_salt="salt",
        secret_hash="hash",
        **SYSTEM,
    )
    site = Site.objects.create(account=account, name="Default Site", **SYSTEM)
    internet_site = Site.objects.create(
        account=account, name="Internet", managed_by=Site.ManagedBy.SYSTEM, **SYSTEM
    )
    now = timezone.now()
    last_seen = {
        "last_seen_user_agent": "Linux/6 connlib/1.4.0",
        "last_seen_remote_ip": "203.0.113.7",
        "last_seen_version": "1.4.0",
        "last_seen_at": now,
    }
    NetworkAddress.objects.create(account=account, address="100.64.0.2", type="ipv4")
    NetworkAddress.objects.create(account=account, address="100.64.0.3", type="ipv4")
    gateway = Gateway.objects.create(
        account=account,
        group=site,
        external_id="gw-1",
        name="gw",
        public_key="G" * 44,
        ipv4="100.64.0.2",
        **last_seen,
    )
    client = Client.objects.create(
        account=account,
        actor=actor,
        identity=identity,
        external_id="dev-1",
        name="laptop",
        public_key="C" * 44,
        ipv4="100.64.0.3",
        **last_seen,
    )
    resource = Resource.objects.create(
        account=account,
        name="wiki",
        type=Resource.Type.DNS,
        address="wiki.example.com",
        ip_stack=Resource.IpStack.DUAL,
        **SYSTEM,
    )
    internet_resource = Resource.objects.create(
        account=account, name="Internet", type=Resource.Type.INTERNET, **SYSTEM
    )
    ResourceConnection.objects.create(
        account=account, resource=resource, gateway_group=site, **SYSTEM
    )
    ResourceConnection.objects.create(
        account=account, resource=internet_resource, gateway_group=internet_site, **SYSTEM
    )
    policy = Policy.objects.create(account=account, actor_group=group, resource=resource, **SYSTEM)
    flow = Flow.objects.create(
        account=account,
        policy=policy,
        client=client,
        gateway=gateway,
        resource=resource,
        token=token,
        actor_group_membership=membership,
        client_remote_ip="203.0.113.7",
        client_user_agent="connlib/1.4.0",
        gateway_remote_ip="198.51.100.1",
        expires_at=now + timedelta(hours=1),
    )
    return World(
        account=account,
        actor=actor,
        provider=provider,
        identity=identity,
        group=group,
        membership=membership,
        token=token,
        site=site,
        internet_site=internet_site,
        gateway=gateway,
        client=client,
        resource=resource,
        internet_resource=internet_resource,
        policy=policy,
        flow=flow,
    )


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
        assert not model.objects.filter(account_id=world.account.id).exists(), model.__name__
        assert model.objects.filter(account_id=survivor.account.id).exists(), model.__name__
    # The audit log is kept.
    assert ChangeLog.objects.filter(account_id=world.account.id).count() == 1


def test_orm_delete_of_an_account_works_too() -> None:
    world = make_world()
    world.account.delete()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for model in ACCOUNT_SCOPED:
        assert not model.objects.exists(), model.__name__


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
    deleted: str, gone: list[type], kept: list[type]
) -> None:
    world = make_world()
    row = getattr(world, deleted)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {row._meta.db_table} WHERE id = %s",
            [row.pk],
        )
    for model in gone:
        assert not model.objects.exists(), model.__name__
    for model in kept:
        assert model.objects.exists(), model.__name__
