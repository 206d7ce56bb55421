"""OpenID Connect sign-in against a fake IdP served over real HTTP: the IdP-specific adapters, the
domain service's change record, and the end-session URL at sign-out.

Shared fixtures: accounts/tests/_oidc.py.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from accounts import oidc
from accounts.models import Account, AuthProvider
from accounts.services.oidc import identity_oidc_signed_in
from accounts.sign_in.logout import logout_url
from accounts.tests._oidc import (  # noqa: F401
    MSG_NOT_ALLOWED,
    A,
    account_fixture,
    admin_identity,
    flashes,
    idp_fixture,
    provider_fixture,
    sign_in,
    start,
)
from accounts.tests.factories import (
    IdentityFactory,
    ProviderFactory,
)
from accounts.tests.fake_idp import FakeIdP
from firezone.errors import Unauthorized
from firezone.models import ChangeLog

pytestmark = pytest.mark.django_db

# --- IdP-specific adapters -----------------------------------------------------------------------


def test_microsoft_entra_uses_the_oid_claim(client: Client, account: Account, idp: FakeIdP) -> None:
    provider = ProviderFactory(
        account=account,
        adapter=A.MICROSOFT_ENTRA,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config=idp.adapter_config(),
    )
    identity = admin_identity(provider, "entra-object-id", created_by="provider")
    response = sign_in(client, provider, idp, sub="pairwise-sub", oid="entra-object-id")
    assert response["Location"] == "/acme/sites"
    identity.refresh_from_db()
    assert identity.provider_identifier == "entra-object-id"


@pytest.mark.parametrize("adapter", [A.GOOGLE_WORKSPACE, A.OKTA, A.JUMPCLOUD, A.MOCK])
def test_directory_synced_providers_match_by_sub_only(
    client: Client, account: Account, idp: FakeIdP, adapter: str
) -> None:
    provider = ProviderFactory(
        account=account,
        adapter=adapter,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config=idp.adapter_config(),
    )
    admin_identity(provider, "eve@acme.test")
    response = sign_in(client, provider, idp, sub="eve-sub", email="eve@acme.test")
    assert flashes(response) == [MSG_NOT_ALLOWED]
    admin_identity(provider, "eve-sub")
    response = sign_in(client, provider, idp, sub="eve-sub", email="eve@acme.test")
    assert response["Location"] == "/acme/sites"


def test_discovery_defaults_per_adapter(account: Account) -> None:
    google = ProviderFactory.build(account=account, adapter=A.GOOGLE_WORKSPACE, adapter_config={})
    jumpcloud = ProviderFactory.build(account=account, adapter=A.JUMPCLOUD, adapter_config={})
    okta = ProviderFactory.build(
        account=account, adapter=A.OKTA, adapter_config={"okta_account_domain": "acme.okta.com"}
    )
    assert oidc.discovery_document_uri(google) == (
        "https://accounts.google.com/.well-known/openid-configuration"
    )
    assert oidc.discovery_document_uri(jumpcloud) == (
        "https://oauth.id.jumpcloud.com/.well-known/openid-configuration"
    )
    assert oidc.discovery_document_uri(okta) == (
        "https://acme.okta.com/.well-known/openid-configuration"
    )


def test_mock_provider_without_client_credentials_is_unavailable(
    client: Client, account: Account
) -> None:
    provider = ProviderFactory(
        account=account,
        adapter=A.MOCK,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config={"num_actors": 5},
    )
    response = start(client, provider)
    assert flashes(response) == [oidc.MSG_UNAVAILABLE]


# --- the domain service --------------------------------------------------------------------------


def test_identity_oidc_signed_in_records_the_change(provider: AuthProvider) -> None:
    identity = admin_identity(provider, "carol@acme.test")
    signed_in = identity_oidc_signed_in(
        provider=provider,
        provider_identifier="carol-sub",
        email="carol@acme.test",
        provider_state={"id_token": "x.y.z", "claims": {"sub": "carol-sub"}},
    )
    assert signed_in.pk == identity.pk
    change = ChangeLog.objects.filter(table="auth_identities", op="update").latest("lsn")
    assert change.old_data is not None
    assert change.old_data["provider_identifier"] == "carol@acme.test"
    assert change.data is not None
    assert change.data["provider_identifier"] == "carol-sub"
    # Tokens never reach the change log.
    assert change.data["provider_state"]["id_token"] == "[redacted]"
    with pytest.raises(Unauthorized):
        identity_oidc_signed_in(
            provider=provider, provider_identifier="nobody", email=None, provider_state={}
        )


# --- sign-out ------------------------------------------------------------------------------------


def test_logout_url_is_the_end_session_endpoint(
    account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-1", provider_state={"id_token": "h.e.y"})
    url = logout_url(provider, identity, account)
    assert url is not None
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{idp.issuer}/logout"
    assert parse_qs(parts.query) == {
        "id_token_hint": ["h.e.y"],
        "client_id": [idp.client_id],
        "post_logout_redirect_uri": ["http://localhost:8000/acme"],
    }
    # Without a stored ID token the hint is left out.
    identity.provider_state = {}
    without_hint = logout_url(provider, identity, account)
    assert without_hint is not None and "id_token_hint" not in without_hint


def test_logout_url_none_without_end_session_or_idp(
    account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-1")
    email = ProviderFactory(account=account)
    assert logout_url(email, IdentityFactory(account=account, provider=email), account) is None
    idp.discovery_overrides["end_session_endpoint"] = None
    assert logout_url(provider, identity, account) is None
    oidc.clear_caches()
    idp.discovery_status = 503
    assert logout_url(provider, identity, account) is None
