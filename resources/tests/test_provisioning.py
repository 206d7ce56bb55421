"""Self-service sign-up provisioning (domain.md §2.1 "Sign-up")."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Account, Actor, ActorGroup, AuthIdentity, AuthProvider
from firezone.errors import ValidationFailed
from firezone.models import ChangeLog
from gateways.models import Site
from resources.models import Resource, ResourceConnection
from resources.services import provisioning
from resources.services.provisioning import account_provision

pytestmark = pytest.mark.django_db

SIGN_UP: dict[str, Any] = {
    "name": "FooBar",
    "slug": None,
    "legal_name": None,
    "admin_name": "John Doe",
    "admin_email": "jdoe@foobar.example",
}


def _counts() -> tuple[int, ...]:
    return tuple(
        m.objects.count()
        for m in (Account, Actor, ActorGroup, AuthProvider, AuthIdentity, Site, Resource, ChangeLog)
    )


def test_provision_creates_a_ready_account(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        done = account_provision(**SIGN_UP)
    account = Account.objects.get(pk=done.account.pk)
    assert account.name == "FooBar" and account.legal_name == "FooBar"
    assert account.slug  # generated
    assert account.metadata == {"stripe": {"billing_email": "jdoe@foobar.example"}}
    assert account.features == {} and account.limits == {}
    assert account.config["notifications"]["outdated_gateway"]["enabled"] is True

    assert done.admin.type == Actor.Type.ACCOUNT_ADMIN_USER and done.admin.name == "John Doe"
    assert done.provider.adapter == "email" and done.provider.name == "Email"
    assert done.identity.actor_id == done.admin.pk
    assert done.identity.provider_id == done.provider.pk
    assert done.identity.provider_identifier == "jdoe@foobar.example"
    assert done.everyone.type == "managed" and done.everyone.name == "Everyone"
    assert list(done.everyone.memberships.values_list("actor_id", flat=True)) == [done.admin.pk]

    assert done.default_site.name == "Default Site"
    assert done.default_site.managed_by == Site.ManagedBy.ACCOUNT
    assert done.internet_site.is_internet_site
    assert done.internet_resource.type == Resource.Type.INTERNET
    assert ResourceConnection.objects.filter(
        resource=done.internet_resource, gateway_group=done.internet_site
    ).exists()
    assert Site.objects.filter(account=account).count() == 2
    # Every row is recorded in the change log.
    tables = set(ChangeLog.objects.filter(account_id=account.pk).values_list("table", flat=True))
    assert {
        "accounts",
        "actor_groups",
        "auth_providers",
        "actors",
        "actor_group_memberships",
        "auth_identities",
        "gateway_groups",
        "resources",
        "resource_connections",
    } <= tables


def test_provision_with_slug_features_limits_metadata() -> None:
    done = account_provision(
        name="Acme Corp",
        slug="Acme_Corp",
        legal_name="Acme Corporation Ltd",
        admin_name="Ada",
        admin_email="  ada@acme.example ",
        features={"idp_sync": True},
        limits={"users_count": 5},
        metadata={"stripe": {"customer_id": "cus_1"}, "other": 1},
    )
    account = done.account
    assert account.slug == "acme_corp"
    assert account.legal_name == "Acme Corporation Ltd"
    assert account.features["idp_sync"] is True and account.limits["users_count"] == 5
    assert account.metadata == {
        "stripe": {"customer_id": "cus_1", "billing_email": "ada@acme.example"},
        "other": 1,
    }
    assert done.identity.provider_identifier == "ada@acme.example"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"slug": "Bad Slug!"}, "slug"),
        ({"slug": "admin"}, "slug"),
        ({"name": "ab"}, "name"),
        ({"admin_email": "jdoe"}, "admin_email"),
        ({"admin_email": ""}, "admin_email"),
        ({"admin_name": "  "}, "admin_name"),
    ],
)
def test_invalid_input_writes_nothing(changes: dict, field: str) -> None:
    before = _counts()
    with pytest.raises(ValidationFailed) as raised:
        account_provision(**{**SIGN_UP, **changes})
    assert field in raised.value.errors
    assert _counts() == before


def test_all_errors_are_reported_together() -> None:
    with pytest.raises(ValidationFailed) as raised:
        account_provision(**{**SIGN_UP, "slug": "x", "admin_email": "nope", "admin_name": ""})
    assert {"slug", "admin_email", "admin_name"} <= set(raised.value.errors)


def test_duplicate_slug_writes_nothing() -> None:
    account_provision(**{**SIGN_UP, "slug": "taken"})
    before = _counts()
    with pytest.raises(ValidationFailed) as raised:
        account_provision(**{**SIGN_UP, "slug": "TAKEN", "admin_email": "x@y.example"})
    assert raised.value.errors["slug"] == ["has already been taken"]
    assert _counts() == before


def test_hooks_run_after_commit_only(monkeypatch, django_capture_on_commit_callbacks) -> None:
    seen: list[Account] = []
    monkeypatch.setattr(provisioning, "POST_PROVISION_HOOKS", [seen.append])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        done = account_provision(**SIGN_UP)
    assert seen == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert [a.pk for a in seen] == [done.account.pk]

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationFailed):
        account_provision(**{**SIGN_UP, "admin_email": "bad"})
    assert len(seen) == 1  # a failed sign-up runs no hook


def test_failing_hook_is_logged_and_later_hooks_still_run(
    monkeypatch, django_capture_on_commit_callbacks, caplog
) -> None:
    seen: list[Account] = []

    def broken(account: Account) -> None:
        raise RuntimeError("stripe down")

    monkeypatch.setattr(provisioning, "POST_PROVISION_HOOKS", [broken, seen.append])
    with django_capture_on_commit_callbacks(execute=True):
        done = account_provision(**SIGN_UP)
    assert [a.pk for a in seen] == [done.account.pk]
    assert "post-provision hook" in caplog.text
    assert Account.objects.filter(pk=done.account.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_hook_runs_on_a_real_commit(monkeypatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(provisioning, "POST_PROVISION_HOOKS", [lambda a: seen.append(a.slug)])
    done = account_provision(**{**SIGN_UP, "slug": "committed"})
    assert seen == ["committed"]
    assert Account.objects.get(slug="committed").pk == done.account.pk
