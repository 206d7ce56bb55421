"""Staff admin of the domain models: every page renders, secrets never appear, account actions."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Model
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import Account, AuthProvider, Token
from firezone.models import ChangeLog
from firezone.redaction import REDACTED, redact
from gateways.models import NetworkAddress, RelayGroup
from tests._schema import SYSTEM, make_world

pytestmark = pytest.mark.django_db

DOMAIN_APPS = {"firezone", "accounts", "gateways", "resources", "billing"}
SECRETS = ("s3cr3t-client", "refresh-me", "argon2-hash-value", "token-salt", "token-hash")


@pytest.fixture
def staff(client: HttpClient) -> HttpClient:
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def world():
    world = make_world()
    provider = AuthProvider.objects.create(
        account=world.account,
        name="Okta",
        adapter=AuthProvider.Adapter.OPENID_CONNECT,
        provisioner=AuthProvider.Provisioner.MANUAL,
        adapter_config={"client_id": "cid", "client_secret": "s3cr3t-client"},
        adapter_state={"refresh_token": "refresh-me", "status": "ok"},
        **SYSTEM,
    )
    world.identity.provider_state = {"password_hash": "argon2-hash-value"}
    world.identity.save()
    Token.objects.filter(pk=world.token.pk).update(
        secret_salt="token-salt", secret_hash="token-hash"
    )
    ChangeLog.objects.create(
        account_id=world.account.id,
        table="auth_providers",
        op="insert",
        data={"id": str(provider.id), "adapter_config": {"client_secret": "s3cr3t-client"}},
    )
    RelayGroup.objects.create(name="global", **SYSTEM)
    return world


def _domain_models() -> list[type[Model]]:
    return [m for m in admin.site._registry if m._meta.app_label in DOMAIN_APPS]


def test_every_domain_model_is_registered() -> None:
    names = {m.__name__ for m in _domain_models()}
    assert names == {
        "Account",
        "Actor",
        "ActorGroup",
        "ActorGroupMembership",
        "AuthProvider",
        "AuthIdentity",
        "Token",
        "ChangeLog",
        "Resource",
        "ResourceConnection",
        "Policy",
        "Flow",
        "Site",
        "Gateway",
        "RelayGroup",
        "Relay",
        "Client",
        "NetworkAddress",
        "ProcessedStripeEvent",
    }


def test_every_page_renders_without_secrets(staff: HttpClient, world) -> None:
    for model in _domain_models():
        opts = model._meta
        pages = [reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")]
        pages.append(pages[0] + "?q=acme")
        obj = model._default_manager.first()
        if obj is not None:
            pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        for url in pages:
            response = staff.get(url)
            assert response.status_code == 200, url
            html = response.content.decode()
            for secret in SECRETS:
                assert secret not in html, (url, secret)


def test_account_found_by_slug_and_links_to_actors(staff: HttpClient, world) -> None:
    url = reverse("admin:accounts_account_changelist")
    assert "Acme" in staff.get(url, {"q": "ACME"}).content.decode()
    change = staff.get(reverse("admin:accounts_account_change", args=[world.account.pk]))
    actors_url = reverse("admin:accounts_actor_changelist")
    assert f"{actors_url}?account__id__exact={world.account.pk}" in change.content.decode()
    listing = staff.get(actors_url, {"account__id__exact": str(world.account.pk)})
    assert listing.status_code == 200 and "Ada" in listing.content.decode()


def test_disable_and_enable_actions(staff: HttpClient, world) -> None:
    url = reverse("admin:accounts_account_changelist")
    staff.post(
        url,
        {
            "action": "disable_accounts",
            "_selected_action": [str(world.account.pk)],
            "reason": "Fraud",
        },
    )
    world.account.refresh_from_db()
    assert world.account.disabled_at is not None
    assert world.account.disabled_reason == "Fraud"
    staff.post(url, {"action": "enable_accounts", "_selected_action": [str(world.account.pk)]})
    world.account.refresh_from_db()
    assert world.account.disabled_at is None and world.account.disabled_reason is None


def test_edit_features_and_limits(staff: HttpClient, world) -> None:
    url = reverse("admin:accounts_account_change", args=[world.account.pk])
    data = {
        "name": "Acme",
        "legal_name": "Acme Inc",
        "slug": "Acme_2",
        "warning_delivery_attempts": "0",
        "config": "{}",
        "metadata": '{"stripe": {"product_name": "Team"}}',
        "feature_idp_sync": "on",
        "feature_rest_api": "on",
        "limit_users_count": "10",
    }
    response = staff.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    account = Account.objects.get(pk=world.account.pk)
    assert account.slug == "acme_2"
    assert account.type == "Team"
    assert account.features == {key: key in ("idp_sync", "rest_api") for key in Account.FEATURES}
    assert account.limits == {key: 10 if key == "users_count" else None for key in Account.LIMITS}


def test_only_disabled_accounts_can_be_deleted(staff: HttpClient, world) -> None:
    url = reverse("admin:accounts_account_delete", args=[world.account.pk])
    assert staff.get(url).status_code == 403
    Account.objects.filter(pk=world.account.pk).update(disabled_at="2025-01-01T00:00:00Z")
    assert staff.post(url, {"post": "yes"}).status_code == 302
    assert not Account.objects.filter(pk=world.account.pk).exists()
    assert not NetworkAddress.objects.exists()


def test_mask_secrets_nested() -> None:
    masked = redact(
        {
            "client_id": "cid",
            "client_secret": "x",
            "service_account_json_key": {"private_key": "k"},
            "userinfo": {"email": "a@b.c"},
            "items": [{"access_token": "t", "expires_at": "soon"}],
            "empty_secret": None,
        }
    )
    assert masked == {
        "client_id": "cid",
        "client_secret": REDACTED,
        "service_account_json_key": REDACTED,
        "userinfo": {"email": "a@b.c"},
        "items": [{"access_token": REDACTED, "expires_at": "soon"}],
        "empty_secret": None,
    }
