"""Account services and selectors (domain.md §2.1)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Account
from accounts.selectors.accounts import account_get, account_get_by_id_or_slug
from accounts.services.accounts import (
    account_create,
    account_disable,
    account_enable,
    account_update,
    account_update_system,
)
from accounts.tests.factories import (
    ACTOR_TYPES,
    AccountFactory,
    admin_subject,
    subject_of_type,
)
from firezone.errors import NotFound, Unauthorized, ValidationFailed
from firezone.models import ChangeLog

pytestmark = pytest.mark.django_db


def _log(account_id, table="accounts"):
    return list(ChangeLog.objects.filter(account_id=account_id, table=table).order_by("lsn"))


# --- create ---------------------------------------------------------------------------------------


def test_create_defaults_and_records_insert(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        account = account_create(name="  Acme Corp  ")
    assert account.name == "Acme Corp"
    assert account.legal_name == "Acme Corp"
    assert account.config["notifications"]["outdated_gateway"]["enabled"] is True
    adjective, _, noun = account.slug.partition("_")
    assert adjective and noun and "-" not in account.slug
    [entry] = _log(account.pk)
    assert entry.op == "insert" and entry.data["slug"] == account.slug
    assert len(callbacks) == 1


def test_create_keeps_explicit_notification_setting_and_validates_config() -> None:
    account = account_create(
        name="Acme",
        slug="Acme_HQ",
        config={
            "notifications": {"outdated_gateway": {"enabled": False}},
            "clients_upstream_dns": [{"protocol": "ip_port", "address": "1.1.1.1"}],
        },
        features={"idp_sync": True},
        limits={"users_count": 3},
        metadata={"stripe": {"customer_id": "cus_1"}},
    )
    assert account.slug == "acme_hq"
    assert account.config["notifications"]["outdated_gateway"]["enabled"] is False
    assert account.features["idp_sync"] is True and account.features["rest_api"] is None
    assert account.limits == {k: (3 if k == "users_count" else None) for k in Account.LIMITS}


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"name": "ab"}, "name", "should be at least 3 character(s)"),
        ({"name": "  "}, "name", "can't be blank"),
        ({"name": "x" * 65}, "name", "should be at most 64 character(s)"),
        ({"name": "Acme", "legal_name": " "}, "legal_name", "can't be blank"),
        ({"name": "Acme", "slug": "sign_in"}, "slug", "is reserved"),
        (
            {"name": "Acme", "slug": "no-dash"},
            "slug",
            "can only contain letters, numbers, and underscores",
        ),
        (
            {"name": "Acme", "slug": "9b9d8c52e8d34a7e9c1d6f1f6a0b3e4d"},
            "slug",
            "cannot be a valid UUID",
        ),
        ({"name": "Acme", "slug": "taken_slug"}, "slug", "has already been taken"),
        ({"name": "Acme", "slug": "TAKEN_SLUG"}, "slug", "has already been taken"),
        (
            {"name": "Acme", "config": {"search_domain": ".bad"}},
            "config.search_domain",
            "must not start with a dot",
        ),
        ({"name": "Acme", "limits": {"users_count": -1}}, "limits.users_count", None),
    ],
)
def test_create_rejects_bad_input_and_writes_nothing(kwargs, field, message) -> None:
    AccountFactory(slug="taken_slug")
    before = (Account.objects.count(), ChangeLog.objects.count())
    with pytest.raises(ValidationFailed) as exc:
        account_create(**kwargs)
    assert field in exc.value.errors
    if message:
        assert message in exc.value.errors[field]
    assert (Account.objects.count(), ChangeLog.objects.count()) == before


def test_generated_slug_is_regenerated_until_unique(monkeypatch) -> None:
    AccountFactory(slug="brave_otter")
    names = iter(["brave_otter", "brave_otter", "calm_fox"])
    monkeypatch.setattr("accounts.services.accounts.adjective_noun", lambda sep: next(names))
    assert account_create(name="Acme").slug == "calm_fox"


# --- user update ----------------------------------------------------------------------------------


def test_update_by_admin_merges_config(django_capture_on_commit_callbacks) -> None:
    account = AccountFactory(config={"notifications": {"outdated_gateway": {"enabled": True}}})
    subject = admin_subject(account)
    with django_capture_on_commit_callbacks() as callbacks:
        updated = account_update(
            subject=subject,
            account=account,
            name="New Name",
            config={"search_domain": "corp.example.com"},
        )
    assert updated.name == "New Name"
    assert updated.config == {
        "notifications": {"outdated_gateway": {"enabled": True}},
        "search_domain": "corp.example.com",
    }
    [entry] = [e for e in _log(account.pk) if e.op == "update"]
    assert entry.old_data["name"] != entry.data["name"]
    assert entry.subject["actor_id"] == str(subject.actor_id)
    assert callbacks


def test_update_bad_config_writes_nothing() -> None:
    account = AccountFactory()
    subject = admin_subject(account)
    with pytest.raises(ValidationFailed) as exc:
        account_update(
            subject=subject,
            account=account,
            name="Renamed",
            config={"clients_upstream_dns": [{"protocol": "dns_over_tls", "address": "1.1.1.1"}]},
        )
    assert "config.clients_upstream_dns.0.protocol" in exc.value.errors
    account.refresh_from_db()
    assert account.name != "Renamed"
    assert not [e for e in _log(account.pk) if e.op == "update"]


@pytest.mark.parametrize("actor_type", ACTOR_TYPES)
def test_update_permissions(actor_type) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, actor_type)
    if actor_type in ("account_admin_user", "api_client"):
        assert (
            account_update(subject=subject, account=account, name="Fine Name").name == "Fine Name"
        )
        assert account_get(subject) == account
    else:
        with pytest.raises(Unauthorized):
            account_update(subject=subject, account=account, name="Fine Name")
        with pytest.raises(Unauthorized):
            account_get(subject)


def test_update_other_account_is_not_found() -> None:
    other = AccountFactory()
    with pytest.raises(NotFound):
        account_update(subject=admin_subject(), account=other, name="Hijacked")
    with pytest.raises(NotFound):
        account_get(admin_subject(), account_id=other.pk)
    other.refresh_from_db()
    assert other.name != "Hijacked"


# --- system update, disable, enable ---------------------------------------------------------------


def test_system_update_replaces_features_and_limits_and_merges_metadata() -> None:
    account = AccountFactory(
        limits={"users_count": 5, "service_accounts_count": 2},
        metadata={"stripe": {"customer_id": "cus_1", "product_name": "Team"}},
    )
    updated = account_update_system(
        account=account,
        features={"rest_api": True},
        limits={"users_count": 10},
        metadata={"stripe": {"subscription_id": "sub_1"}},
    )
    assert updated.features == {k: (True if k == "rest_api" else None) for k in Account.FEATURES}
    assert updated.limits["users_count"] == 10 and updated.limits["service_accounts_count"] is None
    assert updated.metadata["stripe"] == {
        "customer_id": "cus_1",
        "product_name": "Team",
        "subscription_id": "sub_1",
    }


def test_system_update_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationFailed):
        account_update_system(account=AccountFactory(), id="x")


def test_disable_deletes_flows_and_enable_restores(django_capture_on_commit_callbacks) -> None:
    from resources.models import Flow
    from resources.tests.factories import World, make_flow

    world = World()
    account = world.account
    flow = make_flow(world)
    with django_capture_on_commit_callbacks() as callbacks:
        disabled = account_disable(account=account, reason="Stripe subscription deleted")
    assert disabled.disabled_at is not None
    assert disabled.disabled_reason == "Stripe subscription deleted"
    assert not Flow.objects.filter(pk=flow.pk).exists()
    assert _log(account.pk, "flows")[0].op == "delete"
    # The flow delete, the client session's disconnect (a disabled account keeps no devices)
    # and the account update.
    assert len(callbacks) == 3
    first = disabled.disabled_at
    again = account_disable(account=account, reason="again")
    assert again.disabled_at == first  # an existing value is kept
    enabled = account_enable(account=account)
    assert enabled.disabled_at is None and enabled.disabled_reason is None
    assert [e.op for e in _log(account.pk)].count("update") == 3


# --- lookups --------------------------------------------------------------------------------------


def test_get_by_id_or_slug() -> None:
    account = AccountFactory(slug="acme_inc")
    assert account_get_by_id_or_slug("ACME_INC") == account
    assert account_get_by_id_or_slug(str(account.pk)) == account
    with pytest.raises(NotFound):
        account_get_by_id_or_slug("nope_nope")
    with pytest.raises(ValidationFailed) as exc:
        account_get_by_id_or_slug("bad slug!")
    assert exc.value.errors == {"id_or_slug": ["Account ID or Slug contains invalid characters"]}


def test_disabled_at_via_system_update_is_kept_when_given_explicitly() -> None:
    account = AccountFactory()
    when = timezone.now()
    updated = account_update_system(account=account, disabled_at=when, disabled_reason="x")
    assert updated.disabled_at == when
