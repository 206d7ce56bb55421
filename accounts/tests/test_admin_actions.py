"""Staff admin actions go through the account services."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from django.urls import reverse

from accounts import admin as accounts_admin
from accounts.services import accounts as account_services
from firezone.models import ChangeLog
from resources.models import Flow
from resources.tests.factories import World, make_flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: HttpClient) -> HttpClient:
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def test_disable_action_calls_account_disable(staff: HttpClient, monkeypatch) -> None:
    world = World()
    make_flow(world)
    other = World()
    calls = []

    def spy(**kwargs):
        calls.append(kwargs)
        return account_services.account_disable(**kwargs)

    monkeypatch.setattr(accounts_admin, "account_disable", spy)
    response = staff.post(
        reverse("admin:accounts_account_changelist"),
        {
            "action": "disable_accounts",
            "_selected_action": [str(world.account.pk)],
            "reason": "Chargeback",
        },
    )
    assert response.status_code == 302
    assert [(c["account"].pk, c["reason"]) for c in calls] == [(world.account.pk, "Chargeback")]
    world.account.refresh_from_db()
    assert world.account.disabled_at is not None
    assert world.account.disabled_reason == "Chargeback"
    other.account.refresh_from_db()
    assert other.account.disabled_at is None
    # The service's effects: the change is recorded and the account's flows are gone.
    update = ChangeLog.objects.get(account_id=world.account.pk, table="accounts", op="update")
    assert update.data is not None
    assert update.data["disabled_reason"] == "Chargeback"
    assert not Flow.objects.filter(account=world.account).exists()
    deleted = ChangeLog.objects.filter(account_id=world.account.pk, table="flows", op="delete")
    assert deleted.exists()


def test_disable_action_default_reason_and_skips_disabled(staff: HttpClient) -> None:
    world = World()
    url = reverse("admin:accounts_account_changelist")
    data = {"action": "disable_accounts", "_selected_action": [str(world.account.pk)]}
    staff.post(url, data)
    world.account.refresh_from_db()
    first = world.account.disabled_at
    assert world.account.disabled_reason == accounts_admin.DISABLED_REASON_DEFAULT
    staff.post(url, {**data, "reason": "Again"})
    world.account.refresh_from_db()
    # Already disabled accounts are left alone.
    assert world.account.disabled_at == first
    assert world.account.disabled_reason == accounts_admin.DISABLED_REASON_DEFAULT
