"""The app layout's trial banners and the sign-in page's expired-pilot notice
(billing_sync_jobs.md §1.10, scenario 17: N = floor(remaining days))."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.tests.factories import AccountFactory
from accounts.tests.portal import make_acme
from firezone.web.context import account_banners, trial_days_left

pytestmark = pytest.mark.django_db

EXPIRING = (
    "Your Enterprise pilot period will expire in {}. Please contact your sales representative to "
    "extend it."
)
RENEW = (
    "Your Enterprise pilot period needs to be renewed, please contact your sales representative."
)
SIGN_IN = (
    "Your Enterprise pilot needs to be renewed. Contact your system administrator to ensure "
    "uninterrupted service."
)


def _trial(ends: datetime) -> dict:
    return {"stripe": {"trial_ends_at": ends.isoformat().replace("+00:00", "Z")}}


@pytest.mark.parametrize(
    ("left", "days", "banner"),
    [
        (timedelta(days=2) - timedelta(seconds=5), 1, ("info", EXPIRING.format("1 day"))),
        (timedelta(days=4, hours=23), 4, ("info", EXPIRING.format("4 days"))),
        (timedelta(days=5, seconds=5), 5, None),
        (timedelta(hours=23), 0, ("error", RENEW)),
        (-timedelta(days=3, hours=-1), -3, ("error", RENEW)),
    ],
)
def test_trial_banner(left: timedelta, days: int, banner: tuple[str, str] | None) -> None:
    account = AccountFactory(metadata=_trial(timezone.now() + left))
    assert trial_days_left(account) == days
    shown = [(b.kind, str(b.html)) for b in account_banners(account, None)]
    assert shown == ([banner] if banner else [])


def test_no_trial_no_banner() -> None:
    account = AccountFactory(metadata={"stripe": {"trial_ends_at": None}})
    assert trial_days_left(account) is None
    assert account_banners(account, None) == []


@pytest.mark.parametrize(
    ("left", "shown"), [(timedelta(hours=23), True), (timedelta(days=1, hours=1), False)]
)
def test_sign_in_page_when_the_pilot_needs_renewing(left: timedelta, shown: bool) -> None:
    make_acme(metadata=_trial(timezone.now() + left))
    text = Client().get("/acme").content.decode()
    assert (SIGN_IN in text) is shown
