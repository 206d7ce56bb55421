"""The account limits check and processed-events retention jobs (billing_sync_jobs.md §1.13,
§3.2 rows 4 and 17; scenarios 27-29), one run at a time (`firezone.jobs.single_run`), and the
creation guards the limits feed (§1.12, scenario 30)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Account, Actor
from accounts.services.actors import actor_create
from accounts.tests.factories import AccountFactory, ActorFactory, subject_of_type
from billing import tasks
from billing.models import ProcessedStripeEvent
from billing.services.limits_check import accounts_limits_check
from firezone.celery import app
from firezone.errors import LimitReached
from firezone.jobs import single_run
from firezone.models import ChangeLog
from gateways.tests.factories import ClientFactory, SiteFactory
from tests.locks import held_elsewhere
from tests.stripe_fake import FIXTURE_CUSTOMER, StripeFake

pytestmark = pytest.mark.django_db

PROVISIONED = {"stripe": {"customer_id": FIXTURE_CUSTOMER}}
ALL_ONE = dict.fromkeys(Account.LIMITS, 1)


def _over_every_limit(account: Account) -> None:
    """Scenario 28: 2 users with recent clients, 2 admins, 2 service accounts, 2 sites."""
    for _ in range(2):
        ClientFactory(actor=ActorFactory(account=account))
        ActorFactory(account=account, admin=True)
        ActorFactory(account=account, service_account=True)
        SiteFactory(account=account)


def _fresh(account: Account) -> Account:
    return Account.objects.get(pk=account.pk)


def test_27_within_limits_clears_the_warning(stripe_fake: StripeFake) -> None:
    account = AccountFactory(
        metadata=PROVISIONED,
        limits={"users_count": 10},
        warning="You have exceeded the following limits: users",
        warning_delivery_attempts=3,
        warning_last_sent_at=timezone.now(),
    )
    ActorFactory(account=account)
    assert tasks.check_account_limits() == 1
    account = _fresh(account)
    assert account.warning is None
    assert account.warning_delivery_attempts == 0
    assert account.warning_last_sent_at is None
    # Nothing to change on the next run: no write, no change-log row.
    rows = ChangeLog.objects.count()
    assert tasks.check_account_limits() == 0
    assert ChangeLog.objects.count() == rows
    assert stripe_fake.calls == []  # the job never calls Stripe


def test_28_every_limit_exceeded(stripe_fake: StripeFake) -> None:
    account = AccountFactory(metadata=PROVISIONED, limits=ALL_ONE)
    _over_every_limit(account)
    before = timezone.now()
    tasks.check_account_limits()
    account = _fresh(account)
    assert account.warning == (
        "You have exceeded the following limits: "
        "users, monthly active users, service accounts, sites, account admins"
    )
    assert account.warning_delivery_attempts == 0
    assert account.warning_last_sent_at is not None and account.warning_last_sent_at >= before
    assert mail.outbox == []
    # Still over: the warning stays as it was.
    sent_at = account.warning_last_sent_at
    assert tasks.check_account_limits() == 0
    assert _fresh(account).warning_last_sent_at == sent_at


def test_the_warning_follows_the_limits(stripe_fake: StripeFake) -> None:
    account = AccountFactory(metadata=PROVISIONED, limits={"users_count": 1})
    ActorFactory(account=account)
    ActorFactory(account=account)
    tasks.check_account_limits()
    assert _fresh(account).warning == "You have exceeded the following limits: users"
    # At the limit is not over it (strict).
    Account.objects.filter(pk=account.pk).update(limits={"users_count": 2})
    tasks.check_account_limits()
    assert _fresh(account).warning is None


@pytest.mark.parametrize(
    "fields",
    [
        {},  # not provisioned
        {"metadata": {"stripe": {"customer_id": None}}},
        {"metadata": PROVISIONED, "disabled_at": timezone.now()},
    ],
    ids=["no-customer", "null-customer", "disabled"],
)
def test_29_unprovisioned_or_disabled_accounts_are_untouched(
    stripe_fake: StripeFake, fields: dict[str, Any]
) -> None:
    account = AccountFactory(limits=ALL_ONE, warning="Old", **fields)
    _over_every_limit(account)
    before = _fresh(account)
    tasks.check_account_limits()
    after = _fresh(account)
    assert (after.warning, after.warning_last_sent_at, after.updated_at) == (
        "Old",
        None,
        before.updated_at,
    )


def test_billing_off_runs_nothing(settings: Any) -> None:
    settings.BILLING_ENABLED = False
    account = AccountFactory(metadata=PROVISIONED, limits=ALL_ONE)
    _over_every_limit(account)
    assert tasks.check_account_limits() is None
    assert accounts_limits_check() == 0
    assert _fresh(account).warning is None


def test_one_run_at_a_time(stripe_fake: StripeFake) -> None:
    account = AccountFactory(metadata=PROVISIONED, limits=ALL_ONE)
    _over_every_limit(account)
    assert held_elsewhere("billing.check_account_limits", tasks.check_account_limits) is None
    assert _fresh(account).warning is None
    # Released: the next run does its work.
    assert tasks.check_account_limits() == 1
    assert _fresh(account).warning is not None


def test_single_run_is_reentrant_after_release() -> None:
    with single_run("x") as first:
        assert first
    with single_run("x") as again:
        assert again


def _event(id: str, processed_at: Any) -> ProcessedStripeEvent:
    event = ProcessedStripeEvent.objects.create(
        stripe_event_id=id, event_type="customer.updated", event_created_at=timezone.now()
    )
    ProcessedStripeEvent.objects.filter(pk=id).update(processed_at=processed_at)
    return event


def test_processed_events_older_than_30_days_are_deleted() -> None:
    now = timezone.now()
    _event("evt_old", now - timedelta(days=31))
    _event("evt_recent", now - timedelta(days=29))
    assert tasks.cleanup_processed_stripe_events() == 1
    assert list(ProcessedStripeEvent.objects.values_list("pk", flat=True)) == ["evt_recent"]
    assert (
        held_elsewhere(
            "billing.cleanup_processed_stripe_events", tasks.cleanup_processed_stripe_events
        )
        is None
    )


def test_both_jobs_are_on_the_beat_schedule() -> None:
    schedule = {e["task"]: e for e in app.conf.beat_schedule.values()}
    assert schedule["billing.tasks.check_account_limits"]["schedule"] == 300.0
    daily = schedule["billing.tasks.cleanup_processed_stripe_events"]["schedule"]
    assert daily.remaining_estimate(timezone.now()) <= timedelta(days=1)


# --- scenario 30: the creation guards the limits feed (§1.12) -----------------------------------


def _active_users(account: Account, n: int) -> None:
    for _ in range(n):
        ClientFactory(actor=ActorFactory(account=account))


def test_30_seat_limit_counts_users_seen_this_month() -> None:
    account = AccountFactory(limits={"monthly_active_users_count": 3, "users_count": 1})
    admin = subject_of_type(account, "account_admin_user")  # no client: not a seat
    _active_users(account, 2)
    # The users_count limit is ignored when a seat limit is set.
    assert actor_create(subject=admin, name="Third", type=Actor.Type.ACCOUNT_USER)

    Account.objects.filter(pk=account.pk).update(limits={"monthly_active_users_count": 1})
    admin = subject_of_type(_fresh(account), "account_admin_user")
    with pytest.raises(LimitReached) as exc:
        actor_create(subject=admin, name="Fourth", type=Actor.Type.ACCOUNT_USER)
    assert exc.value.code == "seats_limit_reached"


def test_30_users_limit_without_seat_limit_and_disabled_account() -> None:
    account = AccountFactory(limits={"users_count": 1})
    admin = subject_of_type(account, "account_admin_user")
    ActorFactory(account=account)
    with pytest.raises(LimitReached):
        actor_create(subject=admin, name="Extra", type=Actor.Type.ACCOUNT_USER)

    disabled = AccountFactory(disabled_at=timezone.now())
    with pytest.raises(LimitReached):
        actor_create(
            subject=subject_of_type(disabled, "account_admin_user"),
            name="Late",
            type=Actor.Type.ACCOUNT_USER,
        )
