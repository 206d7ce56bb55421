"""The database schema of domain.md §1, as the catalog shows it: tables, unique/partial indexes,
CHECKs, indexes, FK delete rules, the Internet-resource trigger, and models matching migrations.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db

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
    "gateways_client": {"clients_acct_last_seen_id_idx"},
    "resources_resource": {"resources_account_id_name_idx"},
    "resources_policy": {"policies_acct_inserted_id_idx"},
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


def _constraints(table: str) -> dict[str, Any]:
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
