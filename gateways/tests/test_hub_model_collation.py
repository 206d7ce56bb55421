"""The access hub's display order against the database's collation: the model must list
resources in the same order as `resources.access.connectable_resources`, whatever collation the
name columns have.

Shared pieces: gateways/tests/_hub_model.py.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from accounts.services import groups as group_svc
from accounts.tests.factories import AccountFactory, ActorFactory, GroupFactory, subject_for
from gateways.hub.model import AccessModel
from gateways.models import Site
from gateways.services import sites as site_svc
from gateways.tests._hub_model import CONTEXTS, resource_views
from resources.models import Resource
from resources.services import policies as policy_svc
from resources.services import resources as resource_svc
from resources.tests.factories import ClientFactory

# --- display order and the database's collation ---------------------------------------------------


def _set_name_collation(table: str, collation: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attname = 'name'",
            [table],
        )
        (column_type,) = cursor.fetchone()
        cursor.execute(
            f'ALTER TABLE {table} ALTER COLUMN name TYPE {column_type} COLLATE "{collation}"'
        )


def _linguistic_collation() -> str | None:
    """An existing collation that sorts like en_US (case-insensitively first), if any."""
    for name in ("en-US-x-icu", "und-x-icu", "unicode", "en_US.utf8", "en_US"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = %s)", [name])
            if not cursor.fetchone()[0]:
                continue
            try:
                with transaction.atomic():
                    cursor.execute(f"SELECT 'alpha' < 'Beta' COLLATE \"{name}\"")
                    if cursor.fetchone()[0]:
                        return name
            except Exception:  # e.g. "ICU is not supported in this build"
                continue
    return None


@pytest.mark.django_db(transaction=True)
def test_display_order_does_not_depend_on_the_database_collation() -> None:
    """The hub orders resources (and each resource's sites) by name in Python, code point by
    code point; `connectable_resources` orders them in SQL, by the database's collation. The
    test database is created with C.UTF-8, where both agree; a database created with a
    linguistic collation (the postgres:16 image of compose.yaml initialises en_US.utf8) sorts
    "alpha" before "Beta". Here the name columns get such a collation (ICU "unicode")."""
    collation = _linguistic_collation()
    if collation is None:
        pytest.skip("no linguistic collation in this PostgreSQL build (no ICU, no en_US locale)")
    tables = (Resource._meta.db_table, Site._meta.db_table)
    for table in tables:
        _set_name_collation(table, collation)
    try:
        account = AccountFactory()
        subject = subject_for(ActorFactory(account=account, admin=True))
        sites = [site_svc.site_create(subject=subject, name=n).pk for n in ("beta", "Alpha")]
        actor = ActorFactory(account=account)
        client = ClientFactory(actor=actor, account=account)
        group = GroupFactory(account=account)
        group_svc.membership_add(subject=subject, group=group, actor=actor)
        for name in ("Beta", "alpha", "Gamma"):
            resource = resource_svc.resource_create(
                subject=subject, name=name, type="dns", address="x.example.com", connections=sites
            )
            policy_svc.policy_create(
                subject=subject, actor_group_id=group.pk, resource_id=resource.pk
            )
        ctx = CONTEXTS["verified-US"]
        truth = resource_views(client, ctx, "1.4.0")
        assert [v["name"] for v in truth] == ["alpha", "Beta", "Gamma"]  # the collation's order
        model = AccessModel.load(account.pk)
        view = model.client_view(model.grantset(actor.pk), ctx, "1.4.0")
        assert list(view.resources.values()) == truth
    finally:
        for table in tables:
            _set_name_collation(table, "default")
