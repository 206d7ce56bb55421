# The directory-sync back-off (billing_sync_jobs.md §2.2, quirk §7.5 fixed): the end of the last
# sync run, whatever its outcome. Existing providers start from their last success.

from django.db import migrations, models


def from_last_success(apps, schema_editor):
    AuthProvider = apps.get_model("accounts", "AuthProvider")
    AuthProvider.objects.filter(last_synced_at__isnull=False).update(
        last_sync_attempt_at=models.F("last_synced_at")
    )


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0005_delete_changelog"),
    ]

    operations = [
        migrations.AddField(
            model_name="authprovider",
            name="last_sync_attempt_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(from_last_success, migrations.RunPython.noop),
    ]
