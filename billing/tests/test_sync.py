"""`manage.py sync_pricing_plans` and the admin's "Re-sync plan from Stripe" (§1.15)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.tests.factories import AccountFactory
from billing.models import ProcessedStripeEvent
from billing.tests.helpers import provisioned_account
from tests.stripe_fake import FIXTURE_CUSTOMER, PRODUCTS, StripeFake

pytestmark = pytest.mark.django_db


def test_sync_pricing_plans_pages_and_applies(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    for _ in range(11):  # an unknown customer each: reported and skipped
        stripe_fake.add_subscription(customer="cus_Unknown0000", product=PRODUCTS["starter"])
    stripe_fake.add_subscription(customer=FIXTURE_CUSTOMER, product=PRODUCTS["team"], quantity=7)
    out, err = StringIO(), StringIO()
    call_command("sync_pricing_plans", stdout=out, stderr=err)
    account.refresh_from_db()
    assert account.metadata["stripe"]["product_name"] == "Team"
    assert account.limits["users_count"] == 7
    assert "1 subscription(s) applied, 11 skipped." in out.getvalue()
    assert "not_found" in err.getvalue() or "skipped" in err.getvalue()
    pages = stripe_fake.requests("GET", "/v1/subscriptions")
    assert len(pages) == 2 and pages[1].form["starting_after"]
    assert not ProcessedStripeEvent.objects.exists()


def test_sync_pricing_plans_with_stripe_down(stripe_fake: StripeFake) -> None:
    stripe_fake.down()
    with pytest.raises(CommandError, match="Stripe is unavailable"):
        call_command("sync_pricing_plans", stdout=StringIO())


def test_admin_resync_action(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake)
    subscription = stripe_fake.add_subscription(
        customer=FIXTURE_CUSTOMER, product=PRODUCTS["team"], quantity=3
    )
    account.metadata["stripe"]["subscription_id"] = subscription["id"]
    account.save()
    other = AccountFactory()  # no subscription
    staff = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/accounts/account/",
        {"action": "resync_plan_from_stripe", "_selected_action": [account.pk, other.pk]},
        follow=True,
    )
    assert response.status_code == 200
    account.refresh_from_db()
    assert account.metadata["stripe"]["product_name"] == "Team"
    assert account.limits["users_count"] == 3
    text = response.content.decode()
    assert "Re-synced 1 account(s)." in text
    # (the admin capitalises messages)
    assert f"{other.slug}: no Stripe subscription, skipped.".lower() in text.lower()
