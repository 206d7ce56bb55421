"""Indexes of the audit log (accounts/selectors/audit.py), built CONCURRENTLY like 0003: an
account's rows newest first (the page, the export), and one object's rows by the id in its row
image (the detail pages' History, the object filter) without reading the account's whole log."""

import django.db.models.fields.json
import django.db.models.functions.comparison
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("firezone", "0003_changelog_catchup_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="changelog",
            index=models.Index(fields=["account_id", "lsn"], name="changelog_account_lsn"),
        ),
        AddIndexConcurrently(
            model_name="changelog",
            index=models.Index(
                models.F("account_id"),
                django.db.models.fields.json.KeyTextTransform(
                    "id", django.db.models.functions.comparison.Coalesce("data", "old_data")
                ),
                models.F("lsn"),
                name="changelog_account_object",
            ),
        ),
    ]
