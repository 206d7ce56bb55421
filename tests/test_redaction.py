"""One redaction rule (firezone.redaction) for the change log and the Django admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from django.urls import reverse

from accounts import providers
from accounts.models import AuthProvider
from firezone import changes, redaction
from tests._schema import SYSTEM, make_world

SECRET_VALUES = {
    "client_secret": "s3cr3t-client",
    "private_key": "-----BEGIN PRIVATE KEY-----abc",
    "access_token": "access-me",
    "refresh_token": "refresh-me",
    "id_token": "id-me",
    "code_hash": "argon2-code",
}


@pytest.mark.parametrize(
    "key",
    [
        "secret_hash",
        "secret_salt",
        "code_hash",
        "password_hash",
        "client_secret",
        "service_account_json_key",
        "private_key",
        "psk_base",
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "code_verifier",
    ],
)
def test_secret_keys(key: str) -> None:
    assert redaction.is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["token_id", "last_used_token_id", "token_type", "public_key", "client_id", "expires_at"]
)
def test_not_secret_keys(key: str) -> None:
    assert not redaction.is_secret_key(key)


def test_the_registry_secret_config_keys_are_secret() -> None:
    assert providers.SECRET_CONFIG_KEYS
    assert all(redaction.is_secret_key(key) for key in providers.SECRET_CONFIG_KEYS)


def test_unset_values_stay() -> None:
    assert redaction.redact({"client_secret": "", "refresh_token": None, "items": [{"x": 1}]}) == {
        "client_secret": "",
        "refresh_token": None,
        "items": [{"x": 1}],
    }


@pytest.mark.django_db
def test_row_image_and_admin_page_hide_the_same_keys(client: HttpClient) -> None:
    world = make_world()
    config = {
        "client_id": "cid",
        "client_secret": SECRET_VALUES["client_secret"],
        "service_account_json_key": {"private_key": SECRET_VALUES["private_key"]},
    }
    state = {
        "access_token": SECRET_VALUES["access_token"],
        "refresh_token": SECRET_VALUES["refresh_token"],
        "id_token": SECRET_VALUES["id_token"],
        "code_hash": SECRET_VALUES["code_hash"],
        "token_id": "kept",
    }
    provider = AuthProvider.objects.create(
        account=world.account,
        name="Google",
        adapter=AuthProvider.Adapter.GOOGLE_WORKSPACE,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config=config,
        adapter_state=state,
        **SYSTEM,
    )
    image = changes.row_image(provider)
    assert image is not None
    hidden = {
        "client_id": "cid",
        "client_secret": redaction.REDACTED,
        "service_account_json_key": redaction.REDACTED,
    }
    assert image["adapter_config"] == hidden
    assert image["adapter_state"] == {
        "access_token": redaction.REDACTED,
        "refresh_token": redaction.REDACTED,
        "id_token": redaction.REDACTED,
        "code_hash": redaction.REDACTED,
        "token_id": "kept",
    }

    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    page = client.get(reverse("admin:accounts_authprovider_change", args=[provider.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for value in SECRET_VALUES.values():
        assert value not in html
    assert html.count(redaction.REDACTED) >= 6
    assert "cid" in html and "kept" in html
