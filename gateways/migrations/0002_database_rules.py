# Hand-written: database-level ON DELETE actions (domain.md §1.22) and the composite FKs from
# clients/gateways tunnel addresses to network_addresses, which Django fields cannot express.

from django.db import migrations

from accounts.migration_operations import DbOnDelete

CASCADES = [
    ("site", "account"),
    ("networkaddress", "account"),
    ("gateway", "account"),
    ("gateway", "group"),
    ("relaygroup", "account"),
    ("relay", "account"),
    ("relay", "group"),
    ("client", "account"),
    ("client", "actor"),
    ("client", "identity"),
]


def address_fk(table: str, prefix: str, column: str) -> migrations.RunSQL:
    # NO ACTION: addresses are never released, only removed with their account. Deferred, so an
    # account delete may remove addresses and clients/gateways in any order within the transaction.
    name = f"{prefix}_{column}_fkey"
    return migrations.RunSQL(
        sql=(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}, account_id) "
            "REFERENCES gateways_networkaddress (address, account_id) "
            "ON DELETE NO ACTION DEFERRABLE INITIALLY DEFERRED"
        ),
        reverse_sql=f"ALTER TABLE {table} DROP CONSTRAINT {name}",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("gateways", "0001_initial"),
    ]

    operations = [DbOnDelete(model, field) for model, field in CASCADES] + [
        address_fk("gateways_client", "clients", "ipv4"),
        address_fk("gateways_client", "clients", "ipv6"),
        address_fk("gateways_gateway", "gateways", "ipv4"),
        address_fk("gateways_gateway", "gateways", "ipv6"),
    ]
