"""OpenID Connect relying party for the OIDC-family providers (portal.md §3.8, §3.12).

Built on Authlib: its requests `OAuth2Session` builds the authorization URL (with the PKCE S256
challenge) and exchanges the code (with the verifier, client authentication as the IdP's
discovery document allows); its `CodeIDToken` claims validate the ID token (iss, aud, exp, iat,
nonce, azp, at_hash) after `joserfc`, Authlib's JOSE layer, has checked the signature against
the IdP's JWKS. What this module adds is the Firezone side: which adapter reads which claim,
the per-adapter discovery defaults, timeouts, caches, and the user-facing error texts.

Beyond the original (portal.md §3.8 says no OIDC `nonce` is sent): every authorization request
carries a random OIDC `nonce` that the ID token must echo, so an ID token minted for another
sign-in cannot be replayed into this one. The raw ID token is kept for `id_token_hint` on
sign-out (§9 item 12).

`refresh` is the browser-session refresh (billing_sync_jobs.md §2.14): the `refresh_token` grant
at the token endpoint. A new ID token in the answer is verified like a sign-in's (signature, iss,
aud, exp, at_hash) but without a nonce (OIDC Core §12.2), and must name the same user.

Nothing here touches the database or the request: views keep the state (a signed cookie) and a
service stores the result (`accounts.services.oidc`).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from django.conf import settings
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from requests.auth import AuthBase

from accounts import providers
from accounts.models import AuthProvider

# The adapters that sign in through this flow (sign-in page block 1, §3.5), their identifier
# claims (`sub` otherwise) and fixed discovery documents: the adapter registry's.
OIDC_ADAPTERS = providers.OIDC_ADAPTERS
IDENTIFIER_CLAIMS = providers.IDENTIFIER_CLAIMS
FIXED_DISCOVERY_URIS = providers.FIXED_DISCOVERY_URIS

MSG_HTTP_STATUS = "Your identity provider returned {status} HTTP code."
MSG_TIMEOUT = "Your identity provider took too long to respond."
MSG_UNAVAILABLE = "Your identity provider is not available right now."
MSG_NOT_ALLOWED = "You may not authenticate to this account."

# (connect, read) seconds for every IdP request; settings.OIDC_HTTP_TIMEOUT overrides.
DEFAULT_TIMEOUT = (5.0, 10.0)
# Discovery documents and key sets are cached in-process; a key id we do not know forces a
# refetch of the key set (rotation).
CACHE_SECONDS = 300
# Clock skew tolerated on exp/iat/nbf.
LEEWAY_SECONDS = 60
# ID tokens signed with these are refused whatever the IdP advertises.
_REFUSED_ALGORITHMS = {"none"}


class OIDCError(Exception):
    """A sign-in step failed; `message` is the flash text for the user."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(reason or message)
        self.message = message
        self.reason = reason or message


class IdPUnreachable(OIDCError):
    """The IdP answered with an HTTP error, timed out, or sent something unusable."""


class NotAllowed(OIDCError):
    """The IdP's answer does not prove who the user is (bad code, bad ID token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(MSG_NOT_ALLOWED, reason=reason)


@dataclass(frozen=True)
class ProviderConfig:
    client_id: str
    client_secret: str
    discovery_document_uri: str
    scope: str
    identifier_claim: str


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and the secrets to keep (in the state cookie) until the
    callback: `state` (CSRF), the PKCE `code_verifier` and the OIDC `nonce`."""

    url: str
    state: str
    code_verifier: str
    nonce: str


@dataclass(frozen=True)
class SignInResult:
    """The verified outcome of a callback."""

    identifier: str
    email: str | None
    email_verified: bool | None
    claims: dict[str, Any]
    userinfo: dict[str, Any]
    token: dict[str, Any] = field(repr=False)
    expires_at: datetime | None

    def provider_state(self) -> dict[str, Any]:
        """The identity's `provider_state` (domain.md §1.6 shape, plus the raw `id_token`)."""
        return {
            "access_token": self.token.get("access_token"),
            "refresh_token": self.token.get("refresh_token"),
            "id_token": self.token.get("id_token"),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "userinfo": self.userinfo,
            "claims": self.claims,
        }


def is_oidc(provider: AuthProvider) -> bool:
    return provider.adapter in OIDC_ADAPTERS


def _timeout() -> Any:
    return getattr(settings, "OIDC_HTTP_TIMEOUT", None) or DEFAULT_TIMEOUT


def discovery_document_uri(provider: AuthProvider) -> str | None:
    return providers.adapter_spec(provider.adapter).discovery_document_uri(
        provider.adapter_config or {}
    )


def provider_config(provider: AuthProvider) -> ProviderConfig:
    """The OIDC settings of a provider; a provider without them (e.g. a `mock` provider that
    was never given client credentials) cannot be used, as if its IdP were down."""
    config = provider.adapter_config or {}
    uri = discovery_document_uri(provider)
    client_id, client_secret = config.get("client_id"), config.get("client_secret")
    if not is_oidc(provider) or not uri or not client_id or not client_secret:
        raise IdPUnreachable(MSG_UNAVAILABLE, reason="provider_not_configured")
    return ProviderConfig(
        client_id=str(client_id),
        client_secret=str(client_secret),
        discovery_document_uri=uri,
        scope=str(config.get("scope") or "openid email profile"),
        identifier_claim=IDENTIFIER_CLAIMS.get(provider.adapter, "sub"),
    )


# --- HTTP ----------------------------------------------------------------------------------------


def _http_error(exc: Exception) -> IdPUnreachable:
    """The spec's texts: an HTTP status, a timeout, or anything else."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        return IdPUnreachable(MSG_HTTP_STATUS.format(status=status), reason=f"http_{status}")
    if isinstance(exc, requests.Timeout):
        return IdPUnreachable(MSG_TIMEOUT, reason="timeout")
    return IdPUnreachable(MSG_UNAVAILABLE, reason=type(exc).__name__)


def _get_json(url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = requests.get(
            url, timeout=_timeout(), headers={"Accept": "application/json"}, **kwargs
        )
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise _http_error(exc) from exc
    if not isinstance(data, dict):
        raise IdPUnreachable(MSG_UNAVAILABLE, reason="not_a_json_object")
    return data


class _TTLCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + CACHE_SECONDS, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_documents = _TTLCache()
_key_sets = _TTLCache()


def clear_caches() -> None:
    _documents.clear()
    _key_sets.clear()


def discovery_document(uri: str) -> dict[str, Any]:
    """The IdP's `.well-known/openid-configuration` (cached). Raises IdPUnreachable."""
    if (cached := _documents.get(uri)) is not None:
        return cached
    document = _get_json(uri)
    required = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    if not all(isinstance(document.get(key), str) and document[key] for key in required):
        raise IdPUnreachable(MSG_UNAVAILABLE, reason="incomplete_discovery_document")
    _documents.put(uri, document)
    return document


def _key_set(jwks_uri: str, *, refresh: bool = False) -> KeySet:
    data = None if refresh else _key_sets.get(jwks_uri)
    if data is None:
        data = _get_json(jwks_uri)
        _key_sets.put(jwks_uri, data)
    try:
        return KeySet.import_key_set({"keys": data["keys"]})  # the JWKS members it reads
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise IdPUnreachable(MSG_UNAVAILABLE, reason="bad_jwks") from exc


def _session(
    config: ProviderConfig, metadata: dict[str, Any], redirect_uri: str | None
) -> OAuth2Session:
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    basic = "client_secret_basic" in methods
    return OAuth2Session(
        client_id=config.client_id,
        client_secret=config.client_secret,
        token_endpoint_auth_method="client_secret_basic" if basic else "client_secret_post",
        # A refresh asks for no scope: the IdP grants what the sign-in was granted (RFC 6749 §6).
        scope=config.scope if redirect_uri is not None else None,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        default_timeout=_timeout(),
    )


# --- the flow ------------------------------------------------------------------------------------


def authorization_request(provider: AuthProvider, *, redirect_uri: str) -> AuthorizationRequest:
    """Step 1 (`.../redirect`): the IdP authorization URL. Raises IdPUnreachable."""
    config = provider_config(provider)
    metadata = discovery_document(config.discovery_document_uri)
    state = secrets.token_urlsafe(32)
    # 32 random bytes, base64url: 43 characters, within PKCE's 43-128.
    code_verifier = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    with _session(config, metadata, redirect_uri) as session:
        url, _ = session.create_authorization_url(
            metadata["authorization_endpoint"],
            state=state,
            code_verifier=code_verifier,
            nonce=nonce,
            access_type="offline",
        )
    return AuthorizationRequest(url=url, state=state, code_verifier=code_verifier, nonce=nonce)


def states_equal(expected: Any, given: Any) -> bool:
    """Constant-time comparison of the stored and the returned `state`."""
    if not isinstance(expected, str) or not isinstance(given, str) or not expected:
        return False
    return secrets.compare_digest(expected.encode(), given.encode())


def _verify_id_token(
    id_token: str,
    *,
    config: ProviderConfig,
    metadata: dict[str, Any],
    nonce: str | None,
    access_token: str | None,
) -> dict[str, Any]:
    """The verified claims of an ID token. `nonce` is the sign-in's (required and compared);
    None only for an ID token from a refresh, which carries none (OIDC Core §12.2)."""
    algorithms = [
        alg
        for alg in (metadata.get("id_token_signing_alg_values_supported") or ["RS256"])
        if isinstance(alg, str) and alg.lower() not in _REFUSED_ALGORITHMS
    ]
    registry = JWSRegistry(algorithms=algorithms or ["RS256"], strict_check_header=False)
    try:
        try:
            token = jwt.decode(id_token, _key_set(metadata["jwks_uri"]), registry=registry)
        except InvalidKeyIdError:
            # The IdP rotated its keys since we cached them.
            keys = _key_set(metadata["jwks_uri"], refresh=True)
            token = jwt.decode(id_token, keys, registry=registry)
        params: dict[str, Any] = {"client_id": config.client_id}
        if nonce is not None:
            params["nonce"] = nonce
        if access_token:
            params["access_token"] = access_token
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": metadata["issuer"]},
                "aud": {"essential": True, "value": config.client_id},
                "exp": {"essential": True},
            },
            params,
        )
        claims.validate(leeway=LEEWAY_SECONDS)
    except (JoseError, ValueError, TypeError) as exc:
        raise NotAllowed(f"invalid_id_token: {exc}") from exc
    # Authlib checks the nonce only when one is expected; a sign-in always expects one.
    if nonce is not None and not states_equal(nonce, claims.get("nonce")):
        raise NotAllowed("invalid_id_token: nonce")
    return dict(claims)


def _userinfo(
    metadata: dict[str, Any], *, access_token: str | None, subject: Any
) -> dict[str, Any]:
    endpoint = metadata.get("userinfo_endpoint")
    if not endpoint or not access_token:
        return {}
    info = _get_json(endpoint, auth=_Bearer(access_token))
    # OIDC Core 5.3.2: userinfo about someone else must not be used.
    if info.get("sub") is not None and info.get("sub") != subject:
        raise NotAllowed("userinfo_subject_mismatch")
    return info


class _Bearer(AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def finish_sign_in(
    provider: AuthProvider,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    nonce: str,
    response_issuer: str | None = None,
) -> SignInResult:
    """Step 2 (`.../handle_callback`, state already checked): exchange the code, verify the ID
    token, read userinfo. `response_issuer` is the callback's `iss` parameter (RFC 9207), which
    IdPs that send it use to rule out mix-ups between IdPs. Raises IdPUnreachable or
    NotAllowed."""
    config = provider_config(provider)
    metadata = discovery_document(config.discovery_document_uri)
    if response_issuer is not None and response_issuer != metadata["issuer"]:
        raise NotAllowed("authorization_response_issuer_mismatch")
    try:
        with _session(config, metadata, redirect_uri) as session:
            token = session.fetch_token(
                metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
            )
    except OAuthError as exc:
        # invalid_grant & co: a used, expired or foreign code, or a wrong verifier.
        raise NotAllowed(f"token_endpoint: {exc.error}") from exc
    except (requests.RequestException, ValueError) as exc:
        raise _http_error(exc) from exc
    token = dict(token)
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise NotAllowed("no_id_token")
    access_token = token.get("access_token")
    claims = _verify_id_token(
        id_token,
        config=config,
        metadata=metadata,
        nonce=nonce,
        access_token=access_token if isinstance(access_token, str) else None,
    )
    userinfo = _userinfo(
        metadata,
        access_token=access_token if isinstance(access_token, str) else None,
        subject=claims.get("sub"),
    )
    identifier = claims.get(config.identifier_claim) or userinfo.get(config.identifier_claim)
    if not isinstance(identifier, str) or not identifier.strip():
        raise NotAllowed(f"no_{config.identifier_claim}_claim")
    email = claims.get("email") or userinfo.get("email")
    verified = claims.get("email_verified", userinfo.get("email_verified"))
    return SignInResult(
        identifier=identifier.strip(),
        email=email.strip() if isinstance(email, str) and email.strip() else None,
        email_verified=verified if isinstance(verified, bool) else None,
        claims=claims,
        userinfo=userinfo,
        token=token,
        expires_at=_expires_at(token, claims),
    )


@dataclass(frozen=True)
class RefreshResult:
    """A granted refresh: the token response and, when it carried an ID token, its verified
    claims."""

    token: dict[str, Any] = field(repr=False)
    claims: dict[str, Any] | None
    expires_at: datetime | None

    def provider_state(self, previous: Mapping[str, Any]) -> dict[str, Any]:
        """The identity's new `provider_state`: the new tokens and expiry; what the answer did
        not renew (a rotated-away refresh token, the ID token and its claims, userinfo) is kept
        from `previous`."""
        state = dict(previous)
        state["access_token"] = self.token.get("access_token")
        state["refresh_token"] = self.token.get("refresh_token") or previous.get("refresh_token")
        state["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        if self.claims is not None:
            state["id_token"] = self.token.get("id_token")
            state["claims"] = self.claims
        return state


def refresh(provider: AuthProvider, *, refresh_token: str, identifier: str | None) -> RefreshResult:
    """The `refresh_token` grant for the user `identifier` (the identity's provider_identifier;
    None when the caller does not know it, e.g. a provider's own token without stored claims).
    Used for browser sessions (§2.14) and directory-sync providers' tokens (§2.13).

    Raises NotAllowed when the IdP refuses (`invalid_grant`: the grant was revoked, expired or
    the user removed) or answers with an ID token that does not verify or names someone else;
    IdPUnreachable for everything else (HTTP and transport errors, other OAuth errors such as
    `invalid_client`, an unusable answer): nothing is known about the user then."""
    config = provider_config(provider)
    metadata = discovery_document(config.discovery_document_uri)
    try:
        with _session(config, metadata, None) as session:
            token = session.refresh_token(metadata["token_endpoint"], refresh_token=refresh_token)
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            raise NotAllowed("token_endpoint: invalid_grant") from exc
        raise IdPUnreachable(MSG_UNAVAILABLE, reason=f"token_endpoint: {exc.error}") from exc
    except (requests.RequestException, ValueError) as exc:
        raise _http_error(exc) from exc
    token = dict(token)
    access_token = token.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise IdPUnreachable(MSG_UNAVAILABLE, reason="no_access_token")
    claims: dict[str, Any] | None = None
    id_token = token.get("id_token")
    if id_token is not None:
        if not isinstance(id_token, str) or not id_token:
            raise NotAllowed("invalid_id_token: not a string")
        claims = _verify_id_token(
            id_token, config=config, metadata=metadata, nonce=None, access_token=access_token
        )
        if identifier is not None and claims.get(config.identifier_claim) != identifier:
            raise NotAllowed(f"invalid_id_token: another {config.identifier_claim}")
    return RefreshResult(token=token, claims=claims, expires_at=_expires_at(token, claims or {}))


def _expires_at(token: dict[str, Any], claims: dict[str, Any]) -> datetime | None:
    """now + `expires_in` of the token response, else the ID token's `exp` (§3.8)."""
    now = datetime.now(UTC)
    expires_in = token.get("expires_in")
    try:
        if expires_in is not None:
            return now + timedelta(seconds=int(expires_in))
        if claims.get("exp") is not None:
            return datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        pass
    return None


def end_session_url(
    provider: AuthProvider, *, id_token: str | None, post_logout_redirect_uri: str
) -> str | None:
    """RP-initiated logout (§3.12): the IdP's `end_session_endpoint` with `id_token_hint`,
    `client_id` and `post_logout_redirect_uri`; None when the IdP has none or cannot be
    reached (sign-out then goes straight back to the portal)."""
    try:
        config = provider_config(provider)
        metadata = discovery_document(config.discovery_document_uri)
    except OIDCError:
        return None
    endpoint = metadata.get("end_session_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        return None
    params = []
    if id_token:
        params.append(("id_token_hint", id_token))
    params.append(("client_id", config.client_id))
    params.append(("post_logout_redirect_uri", post_logout_redirect_uri))
    return add_params_to_uri(endpoint, params)
