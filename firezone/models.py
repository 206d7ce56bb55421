"""Project-wide models: the change log every domain write records (`firezone.changes`), and the
abstract columns more than one app's tables share."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce

from firezone.fields import CurrentTransactionId, TransactionIdField

# The id of a change-log row's object: in `data` (insert, update) or `old_data` (delete). The
# audit log filters on this very expression so PostgreSQL uses `changelog_account_object`.
AUDIT_OBJECT_ID = KeyTextTransform("id", Coalesce("data", "old_data"))


class ChangeLog(models.Model):
    """Audit log of row changes (domain.md §1.18), written by `firezone.changes.record` in the
    writing transaction. No FK to accounts: the log survives an account delete."""

    class Op(models.TextChoices):
        INSERT = "insert"
        UPDATE = "update"
        DELETE = "delete"

    # A database sequence stands in for the WAL LSN: it orders changes and lets consumers drop
    # stale or duplicate deliveries. Explicit values are still accepted (idempotent imports).
    lsn = models.BigAutoField(primary_key=True)
    # NULL only for rows without an account (global relay groups and their tokens).
    account_id = models.UUIDField(null=True, blank=True, db_index=True)
    table = models.CharField(max_length=255)
    op = models.CharField(max_length=255, choices=Op.choices)
    old_data = models.JSONField(null=True, blank=True)
    data = models.JSONField(null=True, blank=True)
    # Who made the change (firezone.changes._subject_image, firezone/origin.py): {"kind":
    # "actor" | "api_client" | "identity_provider" | "system" | "staff", ...}; NULL for system
    # changes without an origin (and every row written before `kind` existed).
    subject = models.JSONField(null=True, blank=True)
    vsn = models.IntegerField(default=0)
    inserted_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The writing transaction's id, filled by the database and returned by the INSERT: a reader
    # that loaded a snapshot knows from it whether a published change is already in that snapshot
    # (`gateways.hub`).
    xid = TransactionIdField(db_default=CurrentTransactionId())

    class Meta:
        # The table keeps the name it had when the model lived in `accounts`.
        db_table = "accounts_changelog"
        indexes = [
            # The change-log catch-up (`firezone.catchup`): an account's transactions from a
            # snapshot's xmax on, every second for every loaded account.
            models.Index(fields=["account_id", "xid"], name="changelog_account_xid"),
            # ...and the session ends since the previous poll: token and relay deletions,
            # account updates (disabling closes the devices' sockets).
            # `firezone.catchup.SESSION_ENDS_SQL`.
            models.Index(
                fields=["xid"],
                name="changelog_session_ends",
                condition=Q(table="tokens", op="delete")
                | Q(table="relays", op="delete")
                | Q(table="accounts", op="update"),
            ),
            # The audit log (`accounts.selectors.audit`): an account's rows newest first, and
            # one object's rows (a detail page's History) by the id in its row image.
            models.Index(fields=["account_id", "lsn"], name="changelog_account_lsn"),
            models.Index(
                F("account_id"), AUDIT_OBJECT_ID, F("lsn"), name="changelog_account_object"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(op="insert", data__isnull=False, old_data__isnull=True)
                | Q(op="update", data__isnull=False, old_data__isnull=False)
                | Q(op="delete", data__isnull=True, old_data__isnull=False),
                name="valid_data_for_operation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lsn} {self.op} {self.table}"


class Disableable:
    """`is_active` / `is_disabled` of a row with a `disabled_at` column (NULL = enabled)."""

    disabled_at: datetime | None

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None


# The columns of `LastSeenLocation`, for the lists of columns that include them.
LAST_SEEN_LOCATION = (
    "last_seen_remote_ip_location_region",
    "last_seen_remote_ip_location_city",
    "last_seen_remote_ip_location_lat",
    "last_seen_remote_ip_location_lon",
)


class LastSeenLocation(models.Model):
    """Where a session or device was last seen from, by GeoIP (`firezone.geo`): the lookup may
    miss, so every column is nullable. Abstract: its columns live in each inheriting table."""

    last_seen_remote_ip_location_region = models.TextField(null=True, blank=True)  # noqa: DJ001
    last_seen_remote_ip_location_city = models.TextField(null=True, blank=True)  # noqa: DJ001
    last_seen_remote_ip_location_lat = models.FloatField(null=True, blank=True)
    last_seen_remote_ip_location_lon = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True


class ComponentVersion(models.Model):
    """The latest published version of a Firezone component (domain.md §5.14), as last fetched
    by the refresher (`firezone.component_versions`). A table rather than the cache: the last
    known versions survive restarts and a Redis flush, and every process reads the same ones."""

    # apple, android, gateway, gui, headless
    component = models.CharField(max_length=32, primary_key=True)
    version = models.CharField(max_length=255)
    # When the refresher last got this value from the releases source.
    fetched_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.component} {self.version}"
