"""OpenID Connect sign-in (portal.md §3.8, §3.12, §9 item 12) against a fake IdP served over
real HTTP (accounts/tests/fake_idp.py): discovery, authorization request, state cookie, code
exchange with PKCE, ID token verification (signature, iss, aud, exp, nonce), userinfo,
identity matching, and the end-session URL at sign-out."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from accounts import oidc
from accounts.models import Account, AuthIdentity, AuthProvider, Token
from accounts.services.oidc import identity_oidc_signed_in
from accounts.sign_in.logout import logout_url
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
)
from accounts.tests.fake_idp import FakeIdP, rsa_key
from accounts.views.oidc import STATE_COOKIE_MAX_AGE, state_cookie_name
from firezone.errors import Unauthorized
from firezone.models import ChangeLog
from firezone.web.session import SESSIONS_KEY

pytestmark = pytest.mark.django_db

A = AuthProvider.Adapter
MSG_NOT_ALLOWED = "You may not authenticate to this account."
MSG_EXPIRED = "Your session has expired, please try again."
MSG_METHOD = "You may not use this method to sign in."


@pytest.fixture
def idp() -> Any:
    server = FakeIdP().start()
    oidc.clear_caches()
    yield server
    server.stop()
    oidc.clear_caches()


@pytest.fixture
def account() -> Account:
    return AccountFactory(name="Acme", slug="acme")


@pytest.fixture
def provider(account: Account, idp: FakeIdP) -> AuthProvider:
    return ProviderFactory(
        account=account, oidc=True, name="Vault", adapter_config=idp.adapter_config()
    )


def admin_identity(provider: AuthProvider, identifier: str, **kwargs: Any) -> AuthIdentity:
    actor = ActorFactory(account=provider.account, admin=True, name="Ada")
    return IdentityFactory(
        actor=actor,
        account=provider.account,
        provider=provider,
        provider_identifier=identifier,
        email=kwargs.pop("email", None),
        **kwargs,
    )


def start(client: Client, provider: AuthProvider, query: str = "") -> Any:
    return client.get(f"/acme/sign_in/providers/{provider.pk}/redirect{query}")


def follow_callback(client: Client, callback_url: str) -> Any:
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def sign_in(
    client: Client,
    provider: AuthProvider,
    idp: FakeIdP,
    *,
    sub: str,
    query: str = "",
    **claims: Any,
) -> Any:
    response = start(client, provider, query)
    assert response.status_code == 302, response
    return follow_callback(client, idp.login(response["Location"], sub=sub, **claims))


def flashes(response: Any) -> list[str]:
    """The flash messages this response carries. Nothing renders them here (the redirect is not
    followed), so they are dropped from the test client's cookie after reading."""
    found = [m.message for m in get_messages(response.wsgi_request)]
    client = getattr(response, "client", None)
    if client is not None:
        client.cookies.pop("messages", None)
    return found


def stored_sessions(client: Client) -> list[Any]:
    return list(client.session.get(SESSIONS_KEY) or [])


# --- redirect to the IdP -------------------------------------------------------------------------


def test_redirect_sends_the_browser_to_the_idp_with_state_pkce_and_nonce(
    client: Client, account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    response = start(client, provider, "?as=client&nonce=N1&state=S1&redirect_to=")

    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{idp.issuer}/authorize"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["client_id"] == idp.client_id
    assert query["response_type"] == "code"
    assert query["scope"] == "openid email profile"
    assert query["redirect_uri"] == (
        f"http://localhost:8000/{account.pk}/sign_in/providers/{provider.pk}/handle_callback"
    )
    assert query["code_challenge_method"] == "S256"
    assert query["access_type"] == "offline"
    # 32 random bytes, base64url without padding.
    assert len(query["state"]) == 43
    assert len(query["nonce"]) == 43
    assert len(query["code_challenge"]) == 43
    # The client's nonce/state never reach the IdP.
    assert "N1" not in response["Location"] and "S1" not in response["Location"]

    cookie = response.cookies[state_cookie_name(provider.pk)]
    assert cookie["max-age"] == STATE_COOKIE_MAX_AGE == 1800
    assert cookie["samesite"] == "Lax"
    assert cookie["httponly"]
    assert query["state"] not in cookie.value  # signed and compressed, not plain


def test_redirect_refuses_unknown_disabled_or_non_oidc_providers(
    client: Client, account: Account, provider: AuthProvider
) -> None:
    email = ProviderFactory(account=account)
    disabled = ProviderFactory(
        account=account, oidc=True, disabled_at=timezone.now(), adapter_config={}
    )
    for provider_id in ("nope", "00000000-0000-0000-0000-000000000000", email.pk, disabled.pk):
        response = client.get(f"/acme/sign_in/providers/{provider_id}/redirect?as=client")
        assert response.status_code == 302
        assert response["Location"] == "/acme?as=client"
        assert flashes(response) == [MSG_METHOD]


def test_unknown_account_is_404(client: Client, provider: AuthProvider) -> None:
    response = client.get(f"/nobody_here/sign_in/providers/{provider.pk}/redirect")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda idp: setattr(idp, "discovery_status", 500),
            oidc.MSG_HTTP_STATUS.format(status=500),
        ),
        (
            lambda idp: setattr(idp, "discovery_status", 404),
            oidc.MSG_HTTP_STATUS.format(status=404),
        ),
        (lambda idp: setattr(idp, "discovery_body", b"<html>nope</html>"), oidc.MSG_UNAVAILABLE),
        (
            lambda idp: idp.discovery_overrides.update(token_endpoint=None),
            oidc.MSG_UNAVAILABLE,
        ),
    ],
    ids=["500", "404", "not-json", "incomplete"],
)
def test_discovery_errors_are_reported_with_the_spec_texts(
    client: Client, provider: AuthProvider, idp: FakeIdP, setup: Any, message: str
) -> None:
    setup(idp)
    response = start(client, provider, "?as=client&state=S&nonce=N")
    assert response.status_code == 302
    assert response["Location"] == "/acme?as=client&state=S&nonce=N"
    assert flashes(response) == [message]
    assert state_cookie_name(provider.pk) not in response.cookies


def test_discovery_timeout(
    client: Client, provider: AuthProvider, idp: FakeIdP, settings: Any
) -> None:
    settings.OIDC_HTTP_TIMEOUT = 0.3
    idp.delay = 1.5
    response = start(client, provider)
    assert flashes(response) == ["Your identity provider took too long to respond."]


def test_unreachable_idp(client: Client, account: Account) -> None:
    provider = ProviderFactory(
        account=account,
        oidc=True,
        adapter_config={
            "client_id": "c",
            "client_secret": "s",
            # Nothing listens on the discard port.
            "discovery_document_uri": "http://127.0.0.1:9/.well-known/openid-configuration",
        },
    )
    response = start(client, provider)
    assert flashes(response) == ["Your identity provider is not available right now."]


def test_discovery_document_is_cached(client: Client, provider: AuthProvider, idp: FakeIdP) -> None:
    assert start(client, provider).status_code == 302
    idp.discovery_status = 500  # a cached document keeps sign-in working
    response = start(client, provider)
    assert urlsplit(response["Location"]).netloc == urlsplit(idp.issuer).netloc


# --- callback: success ---------------------------------------------------------------------------


def test_sign_in_by_sub_stores_claims_and_id_token(
    client: Client, account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-123")

    response = sign_in(client, provider, idp, sub="sub-123", email="ada@acme.test", name="Ada")

    assert response.status_code == 302
    assert response["Location"] == "/acme/sites"
    assert [(t, a) for t, a, _ in stored_sessions(client)] == [("browser", str(account.pk))]
    identity.refresh_from_db()
    state = identity.provider_state
    assert state["claims"]["sub"] == "sub-123"
    assert state["claims"]["email"] == "ada@acme.test"
    assert state["userinfo"] == {"sub": "sub-123", "email": "ada@acme.test", "name": "Ada"}
    # §9 item 12: the raw ID token is kept for `id_token_hint` at sign-out.
    assert state["id_token"].count(".") == 2
    assert state["access_token"] and state["refresh_token"]
    assert state["expires_at"]
    assert identity.email == "ada@acme.test"
    # PKCE: the verifier went to the token endpoint (the fake IdP checked it).
    assert idp.token_requests[-1]["code_verifier"]
    # The browser token lives no longer than the IdP session (1 h here).
    token = Token.objects.get(identity=identity, type=Token.Type.BROWSER)
    assert token.expires_at <= timezone.now() + timezone.timedelta(hours=1, minutes=1)
    # The state cookie is consumed.
    assert response.cookies[state_cookie_name(provider.pk)]["max-age"] == 0


def test_email_from_userinfo_when_the_id_token_has_none(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-9")
    idp.userinfo = {"sub": "sub-9", "email": "nine@acme.test"}
    response = sign_in(client, provider, idp, sub="sub-9")
    assert response["Location"] == "/acme/sites"
    identity.refresh_from_db()
    assert identity.email == "nine@acme.test"


def test_invited_by_email_takes_the_sub(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "bob@acme.test", email="bob@acme.test")

    response = sign_in(client, provider, idp, sub="bob-sub-1", email="bob@acme.test")

    assert response["Location"] == "/acme/sites"
    identity.refresh_from_db()
    assert identity.provider_identifier == "bob-sub-1"
    assert identity.email == "bob@acme.test"


def test_email_match_only_for_never_used_identities(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "bob@acme.test", last_seen_at=timezone.now())
    response = sign_in(client, provider, idp, sub="bob-sub-1", email="bob@acme.test")
    assert flashes(response) == [MSG_NOT_ALLOWED]


def test_email_match_refused_when_the_idp_says_unverified(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "bob@acme.test")
    response = sign_in(
        client, provider, idp, sub="bob-sub-1", email="bob@acme.test", email_verified=False
    )
    assert flashes(response) == [MSG_NOT_ALLOWED]


def test_exact_sub_match_wins_over_email_invitation(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    by_sub = admin_identity(provider, "sub-1")
    by_email = admin_identity(provider, "one@acme.test")
    sign_in(client, provider, idp, sub="sub-1", email="one@acme.test")
    by_sub.refresh_from_db()
    by_email.refresh_from_db()
    assert by_sub.provider_state["claims"]["sub"] == "sub-1"
    assert by_email.provider_identifier == "one@acme.test"
    assert by_email.provider_state == {}


def test_client_sign_in_keeps_the_params_through_the_idp(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-c")
    identity.actor.type = "account_user"
    identity.actor.save()

    response = sign_in(client, provider, idp, sub="sub-c", query="?as=client&nonce=N0&state=S0")

    assert response.status_code == 200
    assert b"Sign in successful." in response.content
    assert "fz_client_auth" in response.cookies
    assert stored_sessions(client) == []  # client tokens never go into the browser session
    token = Token.objects.get(identity=identity)
    assert token.type == Token.Type.CLIENT


def test_non_admin_browser_sign_in_is_refused(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-u")
    identity.actor.type = "account_user"
    identity.actor.save()
    response = sign_in(client, provider, idp, sub="sub-u")
    assert flashes(response) == [
        "You must have the admin role in Firezone to sign in to the admin portal."
    ]
    assert stored_sessions(client) == []


# --- callback: refusals --------------------------------------------------------------------------


def test_no_just_in_time_provisioning(
    client: Client, account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    before = (AuthIdentity.objects.count(), Token.objects.count())

    response = sign_in(
        client, provider, idp, sub="stranger", email="s@acme.test", query="?redirect_to=/acme/x"
    )

    assert response.status_code == 302
    # The callback URL names the account by id: back to `/<account id>` with the params.
    assert response["Location"] == f"/{account.pk}?redirect_to=%2Facme%2Fx"
    assert flashes(response) == [MSG_NOT_ALLOWED]
    assert (AuthIdentity.objects.count(), Token.objects.count()) == before
    assert stored_sessions(client) == []


def test_disabled_actor_cannot_sign_in(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    identity = admin_identity(provider, "sub-d")
    identity.actor.disabled_at = timezone.now()
    identity.actor.save()
    response = sign_in(client, provider, idp, sub="sub-d")
    assert flashes(response) == [MSG_NOT_ALLOWED]


def test_state_mismatch(
    client: Client, account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    tampered = callback.replace("state=", "state=x")

    response = follow_callback(client, tampered)

    assert response["Location"] == f"/{account.pk}"
    assert flashes(response) == [MSG_EXPIRED]
    assert response.cookies[state_cookie_name(provider.pk)]["max-age"] == 0
    # The cookie is gone: even the genuine callback fails now.
    response = follow_callback(client, callback)
    assert flashes(response) == [MSG_EXPIRED]
    assert idp.token_requests == []


def test_callback_without_prior_redirect(client: Client, provider: AuthProvider) -> None:
    response = client.get(f"/acme/sign_in/providers/{provider.pk}/handle_callback?state=x&code=y")
    assert response["Location"] == "/acme"
    assert flashes(response) == [MSG_EXPIRED]


def test_tampered_or_foreign_state_cookie(
    client: Client, account: Account, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    other = ProviderFactory(
        account=account, oidc=True, adapter_config=idp.adapter_config(client_id="other")
    )
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    value = client.cookies[state_cookie_name(provider.pk)].value
    # Provider A's cookie copied under provider B's name does not verify (salted per provider).
    client.cookies[state_cookie_name(other.pk)] = value
    other_callback = callback.replace(str(provider.pk), str(other.pk))
    assert flashes(follow_callback(client, other_callback)) == [MSG_EXPIRED]
    # A modified cookie does not verify either.
    client.cookies[state_cookie_name(provider.pk)] = value[:-2] + "xx"
    assert flashes(follow_callback(client, callback)) == [MSG_EXPIRED]


def test_idp_error_in_the_callback(client: Client, provider: AuthProvider) -> None:
    response = client.get(
        f"/acme/sign_in/providers/{provider.pk}/handle_callback"
        "?error=access_denied&error_description=End-User+aborted+interaction"
    )
    assert response["Location"] == "/acme"
    assert flashes(response) == [
        "Invalid request. error: access_denied. error_description: End-User aborted interaction"
    ]
    response = client.get(f"/acme/sign_in/providers/{provider.pk}/handle_callback")
    assert flashes(response) == ["Invalid request."]


@pytest.mark.parametrize(
    "overrides",
    [
        {"nonce": "not-the-one-we-sent"},
        {"nonce": None},
        {"exp": int(time.time()) - 3600},
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"iat": None},
    ],
    ids=["nonce-mismatch", "nonce-missing", "expired", "audience", "issuer", "no-iat"],
)
def test_invalid_id_tokens_are_refused(
    client: Client, provider: AuthProvider, idp: FakeIdP, overrides: dict[str, Any]
) -> None:
    identity = admin_identity(provider, "sub-1")
    idp.id_token_overrides = overrides
    response = sign_in(client, provider, idp, sub="sub-1")
    assert flashes(response) == [MSG_NOT_ALLOWED]
    identity.refresh_from_db()
    assert identity.provider_state == {}
    assert stored_sessions(client) == []


def test_id_token_signed_with_an_unknown_key_is_refused(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    idp.sign_with = rsa_key("k1")  # same key id, different key: bad signature
    assert flashes(sign_in(client, provider, idp, sub="sub-1")) == [MSG_NOT_ALLOWED]
    idp.sign_with = rsa_key("k2")  # unknown key id: refetched JWKS, still unknown
    assert flashes(sign_in(client, provider, idp, sub="sub-1")) == [MSG_NOT_ALLOWED]


def test_rotated_idp_key_is_picked_up(client: Client, provider: AuthProvider, idp: FakeIdP) -> None:
    admin_identity(provider, "sub-1")
    assert sign_in(client, provider, idp, sub="sub-1")["Location"] == "/acme/sites"
    idp.key = rsa_key("k-new")  # the cached JWKS lacks this kid
    client.cookies.clear()
    assert sign_in(client, provider, idp, sub="sub-1")["Location"] == "/acme/sites"


def test_code_replay_is_refused(client: Client, provider: AuthProvider, idp: FakeIdP) -> None:
    admin_identity(provider, "sub-1")
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    assert follow_callback(client, callback)["Location"] == "/acme/sites"
    # Same state again, with a fresh state cookie for a new flow: state mismatch.
    start(client, provider)
    assert flashes(follow_callback(client, callback)) == [MSG_EXPIRED]


def test_authorization_response_from_another_issuer_is_refused(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    mixed_up = callback.replace("iss=http", "iss=https")
    assert flashes(follow_callback(client, mixed_up)) == [MSG_NOT_ALLOWED]
    assert idp.token_requests == []  # the code never went to the token endpoint


def test_token_endpoint_errors(client: Client, provider: AuthProvider, idp: FakeIdP) -> None:
    admin_identity(provider, "sub-1")
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    idp.codes.clear()  # the IdP forgot the code: invalid_grant
    assert flashes(follow_callback(client, callback)) == [MSG_NOT_ALLOWED]


def test_userinfo_about_someone_else_is_refused(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    idp.userinfo = {"sub": "sub-2", "email": "two@acme.test"}
    assert flashes(sign_in(client, provider, idp, sub="sub-1")) == [MSG_NOT_ALLOWED]


def test_provider_disabled_during_the_round_trip(
    client: Client, provider: AuthProvider, idp: FakeIdP
) -> None:
    admin_identity(provider, "sub-1")
    response = start(client, provider)
    callback = idp.login(response["Location"], sub="sub-1")
    AuthProvider.objects.filter(pk=provider.pk).update(disabled_at=timezone.now())
    assert flashes(follow_callback(client, callback)) == [MSG_METHOD]


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
    assert change.old_data["provider_identifier"] == "carol@acme.test"
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
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{idp.issuer}/logout"
    assert parse_qs(parts.query) == {
        "id_token_hint": ["h.e.y"],
        "client_id": [idp.client_id],
        "post_logout_redirect_uri": ["http://localhost:8000/acme"],
    }
    # Without a stored ID token the hint is left out.
    identity.provider_state = {}
    assert "id_token_hint" not in logout_url(provider, identity, account)


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
