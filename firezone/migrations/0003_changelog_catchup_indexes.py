"""Indexes of the change-log catch-up (firezone/catchup.py), built CONCURRENTLY: the change log
has millions of rows and is written by every domain write."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("firezone", "0002_component_versions"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="changelog",
            index=models.Index(fields=["account_id", "xid"], name="changelog_account_xid"),
        ),
        AddIndexConcurrently(
            model_name="changelog",
            index=models.Index(
                condition=models.Q(
                    models.Q(("op", "delete"), ("table", "tokens")),
                    models.Q(("op", "delete"), ("table", "relays")),
                    models.Q(("op", "update"), ("table", "accounts")),
                    _connector="OR",
                ),
                fields=["xid"],
                name="changelog_session_ends",
            ),
        ),
    ]
