"""Pushing account changes to the Stripe customer (billing_sync_jobs.md §1.5, §6 "Billing"
scenario 6): after the update commits, through `billing.tasks.sync_stripe_customer`."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Account
from accounts.services.accounts import account_update, account_update_system
from accounts.tests.factories import AccountFactory, admin_subject
from accounts.tests.portal import UA, inject_session, make_acme
from billing import tasks
from tests.stripe_fake import FIXTURE_CUSTOMER, StripeFake

pytestmark = pytest.mark.django_db

CUSTOMER_PATH = f"/v1/customers/{FIXTURE_CUSTOMER}"


def _provisioned(stripe_fake: StripeFake, **fields) -> Account:
    account = AccountFactory(
        name="Acme", legal_name="Acme Inc.", slug="acme_co",
        metadata={"stripe": {"customer_id": FIXTURE_CUSTOMER}}, **fields,
    )  # fmt: skip
    stripe_fake.add_customer(FIXTURE_CUSTOMER, account_id=account.pk)
    return account


def test_scenario_6_name_change_updates_the_customer(
    stripe_fake: StripeFake, django_capture_on_commit_callbacks
) -> None:
    account = _provisioned(stripe_fake)
    with django_capture_on_commit_callbacks(execute=True):
        account_update(subject=admin_subject(account), account=account, name="Acme Renamed")
        assert stripe_fake.calls == []  # not before the commit

    (call,) = stripe_fake.calls
    assert (call.method, call.path) == ("POST", CUSTOMER_PATH)
    assert call.form == {
        "name": "Acme Inc.",
        "metadata": {
            "account_id": str(account.pk),
            "account_name": "Acme Renamed",
            "account_slug": "acme_co",
        },
    }  # no email
    assert stripe_fake.customers[FIXTURE_CUSTOMER]["metadata"]["account_name"] == "Acme Renamed"


def test_scenario_6_legal_name_only_calls_nothing(
    stripe_fake: StripeFake, django_capture_on_commit_callbacks
) -> None:
    account = _provisioned(stripe_fake)
    subject = admin_subject(account)
    with django_capture_on_commit_callbacks(execute=True):
        account_update(subject=subject, account=account, legal_name="Acme LLC")
        account_update(subject=subject, account=account, name="Acme")  # unchanged
    assert stripe_fake.calls == []


def test_slug_change_by_the_system_updates_the_customer(
    stripe_fake: StripeFake, django_capture_on_commit_callbacks
) -> None:
    account = _provisioned(stripe_fake)
    with django_capture_on_commit_callbacks(execute=True):
        account_update_system(account=account, slug="acme_new", legal_name="Acme GmbH")
    (call,) = stripe_fake.requests("POST", CUSTOMER_PATH)
    assert call.form["name"] == "Acme GmbH"
    assert call.form["metadata"]["account_slug"] == "acme_new"


def test_rolled_back_update_calls_nothing(
    stripe_fake: StripeFake, django_capture_on_commit_callbacks
) -> None:
    account = _provisioned(stripe_fake)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        account_update_system(account=account, name="Acme Renamed")
    assert len(callbacks) >= 1 and stripe_fake.calls == []  # only sent on commit


def test_failure_is_retried_by_the_task(
    stripe_fake: StripeFake, django_capture_on_commit_callbacks
) -> None:
    account = _provisioned(stripe_fake)
    stripe_fake.fail(CUSTOMER_PATH, 500, times=2)
    with django_capture_on_commit_callbacks(execute=True):
        account_update_system(account=account, name="Acme Renamed")
    # Two 500s, then the third attempt (eager retries in tests) goes through.
    assert len(stripe_fake.requests("POST", CUSTOMER_PATH)) == 3
    assert stripe_fake.customers[FIXTURE_CUSTOMER]["metadata"]["account_name"] == "Acme Renamed"


def test_unprovisioned_or_billing_off_calls_nothing(
    stripe_fake: StripeFake, settings, django_capture_on_commit_callbacks
) -> None:
    account = AccountFactory()
    with django_capture_on_commit_callbacks(execute=True):
        account_update_system(account=account, name="Renamed One")
    settings.BILLING_ENABLED = False
    provisioned = _provisioned(stripe_fake)
    with django_capture_on_commit_callbacks(execute=True):
        account_update_system(account=provisioned, name="Renamed Two")
    tasks.sync_stripe_customer.apply(args=[str(provisioned.pk)])
    assert stripe_fake.calls == []


def test_portal_rename_updates_the_customer(
    stripe_fake: StripeFake, django_capture_on_commit_callbacks
) -> None:
    acme = make_acme(metadata={"stripe": {"customer_id": FIXTURE_CUSTOMER}})
    stripe_fake.add_customer(FIXTURE_CUSTOMER, account_id=acme.account.pk)
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, acme.admin_identity)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/acme/settings/account/edit", {"name": "Acme Corp"})
    assert response.status_code == 302
    (call,) = stripe_fake.requests("POST", CUSTOMER_PATH)
    assert call.form["metadata"]["account_name"] == "Acme Corp"
