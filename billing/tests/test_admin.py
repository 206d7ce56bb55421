"""Staff admin: "Open in Stripe" on accounts with a customer, processed Stripe events (read-only,
searchable by customer and type)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.tests.factories import AccountFactory
from billing.models import ProcessedStripeEvent

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/account/"


@pytest.fixture
def staff(client: Client) -> Client:
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def test_account_page_links_to_the_stripe_customer(staff: Client, settings) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_abc"
    account = AccountFactory(metadata={"stripe": {"customer_id": "cus_NffrFeUfNV2Hib"}})
    page = staff.get(f"{CHANGELIST}{account.pk}/change/").content.decode()
    assert 'href="https://dashboard.stripe.com/test/customers/cus_NffrFeUfNV2Hib"' in page
    assert "Open in Stripe" in page

    settings.STRIPE_SECRET_KEY = "sk_live_abc"
    page = staff.get(f"{CHANGELIST}{account.pk}/change/").content.decode()
    assert 'href="https://dashboard.stripe.com/customers/cus_NffrFeUfNV2Hib"' in page


def test_open_in_stripe_action(staff: Client, settings) -> None:
    settings.STRIPE_SECRET_KEY = "sk_live_abc"
    account = AccountFactory(metadata={"stripe": {"customer_id": "cus_NffrFeUfNV2Hib"}})
    plain = AccountFactory()
    response = staff.post(
        CHANGELIST, {"action": "open_in_stripe", "_selected_action": [str(account.pk)]}
    )
    assert response.status_code == 302
    assert response["Location"] == "https://dashboard.stripe.com/customers/cus_NffrFeUfNV2Hib"

    for selected in ([str(plain.pk)], [str(account.pk), str(plain.pk)]):
        response = staff.post(
            CHANGELIST, {"action": "open_in_stripe", "_selected_action": selected}, follow=True
        )
        assert "Select exactly one account with a Stripe customer." in response.content.decode()


def test_processed_events_are_listed_and_searchable_read_only(staff: Client) -> None:
    at = datetime(2024, 3, 1, tzinfo=UTC)
    ProcessedStripeEvent.objects.create(
        stripe_event_id="evt_111",
        event_type="customer.subscription.updated",
        stripe_customer_id="cus_AAA",
        event_created_at=at,
    )
    ProcessedStripeEvent.objects.create(
        stripe_event_id="evt_222",
        event_type="customer.created",
        stripe_customer_id="cus_BBB",
        event_created_at=at,
    )
    url = "/admin/billing/processedstripeevent/"
    page = staff.get(url).content.decode()
    assert "evt_111" in page and "evt_222" in page
    page = staff.get(url, {"q": "cus_AAA"}).content.decode()
    assert "evt_111" in page and "evt_222" not in page
    page = staff.get(url, {"q": "customer.created"}).content.decode()
    assert "evt_222" in page and "evt_111" not in page
    assert staff.get(f"{url}add/").status_code == 403
    change = staff.get(f"{url}evt_111/change/").content.decode()
    assert 'name="_save"' not in change  # read-only
