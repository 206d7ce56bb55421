"""Ops commands (billing_sync_jobs.md §1.15): create_account, provision_account_user,
delete_disabled_account."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Account, Actor, AuthIdentity
from accounts.services.accounts import account_disable
from accounts.tests.factories import AccountFactory
from firezone.models import ChangeLog
from gateways.models import Site
from resources.services.provisioning import account_provision
from tests.stripe_fake import StripeFake

pytestmark = pytest.mark.django_db


def _run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _account(slug: str = "opsco") -> Account:
    return account_provision(
        name="Ops Co", slug=slug, legal_name=None, admin_name="Ann Admin", admin_email="a@ops.co"
    ).account


# --- create_account ------------------------------------------------------------------------------


def test_create_account_provisions_it(
    stripe_fake: StripeFake, django_capture_on_commit_callbacks
) -> None:
    # The sign-up hook runs after commit too (captured here): still one customer.
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = _run("create_account", "Big Co", "bigco", "Jane Admin", "jane@bigco.com")
    account = Account.objects.get(slug="bigco")
    assert f"account {account.pk} (bigco) created" in out
    assert account.stripe["customer_id"] in out
    (call,) = stripe_fake.requests("POST", "/v1/customers")
    assert call.form["email"] == "jane@bigco.com" and call.form["name"] == "Big Co"
    assert account.stripe["billing_email"] == "jane@bigco.com"
    assert account.stripe["subscription_id"] in stripe_fake.subscriptions
    admin = Actor.objects.get(account=account)
    assert admin.name == "Jane Admin" and admin.type == Actor.Type.ACCOUNT_ADMIN_USER
    assert AuthIdentity.objects.get(actor=admin).provider_identifier == "jane@bigco.com"
    assert set(Site.objects.filter(account=account).values_list("name", flat=True)) == {
        "Default Site",
        "Internet",
    }


def test_create_account_with_stripe_down_keeps_the_account(stripe_fake: StripeFake) -> None:
    stripe_fake.down()
    out, err = _run("create_account", "Big Co", "bigco", "Jane Admin", "jane@bigco.com")
    assert "created" in out
    assert "Stripe is unavailable" in err and "retried" in err
    assert "customer_id" not in Account.objects.get(slug="bigco").stripe


def test_create_account_with_billing_off(stripe_fake: StripeFake, settings) -> None:
    settings.BILLING_ENABLED = False
    out, err = _run("create_account", "Big Co", "bigco", "Jane Admin", "jane@bigco.com")
    assert "created" in out and "Stripe" not in out + err
    assert stripe_fake.calls == []


def test_create_account_refuses_bad_input(stripe_fake: StripeFake) -> None:
    _account("taken")
    with pytest.raises(CommandError, match="slug: has already been taken"):
        _run("create_account", "Big Co", "taken", "Jane Admin", "jane@bigco.com")
    with pytest.raises(CommandError, match="admin_email"):
        _run("create_account", "Big Co", "bigco2", "Jane Admin", "not-an-email")
    assert not Account.objects.filter(slug="bigco2").exists()
    assert stripe_fake.calls == []


# --- provision_account_user ----------------------------------------------------------------------


def test_provision_account_user_adds_an_admin_with_email_identity() -> None:
    account = _account()
    out, _ = _run("provision_account_user", "opsco", "Firezone Support", "support@firezone.dev")
    actor = Actor.objects.get(account=account, name="Firezone Support")
    assert actor.type == Actor.Type.ACCOUNT_ADMIN_USER
    identity = AuthIdentity.objects.get(actor=actor)
    assert identity.provider_identifier == "support@firezone.dev"
    assert identity.provider.adapter == "email"
    assert str(actor.pk) in out

    _run("provision_account_user", "opsco", "Regular", "u@ops.co", "--type", "account_user")
    assert Actor.objects.get(account=account, name="Regular").type == Actor.Type.ACCOUNT_USER


def test_provision_account_user_refusals() -> None:
    _account()
    with pytest.raises(CommandError, match="no account with slug 'nope'"):
        _run("provision_account_user", "nope", "X Y", "x@y.co")
    with pytest.raises(CommandError, match="invalid input"):
        _run("provision_account_user", "opsco", "X Y", "not-an-email")
    bare = AccountFactory(slug="bare")
    with pytest.raises(CommandError, match="no enabled email provider"):
        _run("provision_account_user", "bare", "X Y", "x@y.co")
    assert not Actor.objects.filter(account=bare).exists()


# --- delete_disabled_account ---------------------------------------------------------------------


def test_delete_disabled_account_deletes_everything() -> None:
    account = _account()
    other = _account("other")
    account_disable(account=account, reason="Stripe subscription deleted")
    out, _ = _run("delete_disabled_account", str(account.pk))
    assert f"account {account.pk} (opsco) deleted" in out
    assert not Account.objects.filter(pk=account.pk).exists()
    assert not Actor.objects.filter(account_id=account.pk).exists()
    assert not Site.objects.filter(account_id=account.pk).exists()
    assert ChangeLog.objects.filter(account_id=account.pk, op="delete").exists()
    assert Account.objects.filter(pk=other.pk).exists()


def test_delete_disabled_account_refuses_an_enabled_or_unknown_account() -> None:
    account = _account()
    with pytest.raises(CommandError, match="not disabled"):
        _run("delete_disabled_account", str(account.pk))
    assert Account.objects.filter(pk=account.pk).exists()
    with pytest.raises(CommandError, match="no account"):
        _run("delete_disabled_account", str(uuid.uuid4()))
    with pytest.raises(CommandError, match="not a UUID"):
        _run("delete_disabled_account", "opsco")
