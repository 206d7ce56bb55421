# Hand-written: database-level ON DELETE CASCADE for every FK of the accounts app (domain.md §1.22).

from django.db import migrations

from accounts.migration_operations import DbOnDelete

CASCADES = [
    ("actor", "account"),
    ("authprovider", "account"),
    ("actorgroup", "account"),
    ("actorgroup", "provider"),
    ("actorgroupmembership", "account"),
    ("actorgroupmembership", "actor"),
    ("actorgroupmembership", "group"),
    ("authidentity", "account"),
    ("authidentity", "actor"),
    ("authidentity", "provider"),
    ("token", "account"),
    ("token", "actor"),
    ("token", "identity"),
    ("token", "relay_group"),
    ("token", "gateway_group"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_token_gateway_and_relay_groups"),
    ]

    operations = [DbOnDelete(model, field) for model, field in CASCADES]
