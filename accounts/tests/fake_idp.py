"""A tiny OpenID Connect provider for the OIDC unit tests: a real HTTP server in a thread.

It serves discovery, JWKS, token and userinfo over HTTP, so the code under test runs its real
network path (Authlib + requests + joserfc). "Logging in" at the IdP is `FakeIdP.login(url)`:
it reads the authorization request the portal produced (client id, redirect URI, state, PKCE
challenge, nonce), remembers a one-time code bound to it, and returns the callback URL the
browser would be sent to. The token endpoint checks client authentication, the code, the
redirect URI and the PKCE verifier like a real IdP, and signs ID tokens with an RSA key.

Knobs for failure cases: `discovery_status`, `discovery_body`, `delay` (seconds before
answering discovery), `discovery_overrides`, `id_token_overrides` (claims merged into the next
ID tokens; a value of `None` removes the claim), `sign_with` (another key), `userinfo`.

Refresh (`grant_type=refresh_token`): every code exchange issues a refresh token remembered in
`refresh_grants`; a refresh rotates it (the old one stops working) and answers with a new access
token, `refresh_expires_in` and, unless `refresh_id_token` is off, a new ID token without a nonce.
An unknown or revoked refresh token (`revoke_refresh_tokens()`) gets `invalid_grant`;
`refresh_answer` = (status, body) replaces the answer of every refresh.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


def rsa_key(kid: str = "k1") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


class FakeIdP:
    def __init__(self, *, client_id: str = "portal-client", client_secret: str = "s3cret") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.key = rsa_key()
        self.sign_with: RSAKey | None = None
        self.discovery_status = 200
        self.discovery_body: bytes | None = None
        self.discovery_overrides: dict[str, Any] = {}
        self.delay = 0.0
        self.id_token_overrides: dict[str, Any] = {}
        self.userinfo: dict[str, Any] | None = None
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.refresh_grants: dict[str, dict[str, Any]] = {}
        self.refresh_expires_in: int | None = 3600
        self.refresh_id_token = True
        self.refresh_answer: tuple[int, Any] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeIdP:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def discovery_uri(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def adapter_config(self, **extra: Any) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "discovery_document_uri": self.discovery_uri,
            "scope": "openid email profile",
            "response_type": "code",
            **extra,
        }

    def document(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            **self.discovery_overrides,
        }

    # --- the user at the IdP --------------------------------------------------------------------

    def login(self, authorization_url: str, *, sub: str, **claims: Any) -> str:
        """The user signs in as `sub` (with extra ID token `claims`, e.g. email); returns the
        callback URL (redirect_uri?code=&state=)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        assert query["client_id"] == self.client_id
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"query": query, "sub": sub, "claims": claims}
        separator = "&" if "?" in query["redirect_uri"] else "?"
        params = urlencode({"code": code, "state": query["state"], "iss": self.issuer})
        return f"{query['redirect_uri']}{separator}{params}"

    def revoke_refresh_tokens(self) -> None:
        """The user's grants are revoked at the IdP (signed out there, removed, ...)."""
        self.refresh_grants.clear()

    def _tokens(
        self, grant: dict[str, Any], *, nonce: str | None, id_token: bool
    ) -> dict[str, Any]:
        """A token response for `grant` (its sub and extra claims), remembering the new access
        and refresh tokens."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant["sub"],
            "aud": self.client_id,
            "iat": now,
            "exp": now + 3600,
            **({"nonce": nonce} if nonce is not None else {}),
            **grant["claims"],
        }
        for key, value in self.id_token_overrides.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        access_token = secrets.token_urlsafe(16)
        self.access_tokens[access_token] = grant
        refresh_token = secrets.token_urlsafe(16)
        self.refresh_grants[refresh_token] = grant
        answer: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": refresh_token,
        }
        if id_token:
            answer["id_token"] = self.id_token(claims)
        return answer

    def id_token(self, claims: dict[str, Any], *, key: RSAKey | None = None) -> str:
        key = key or self.sign_with or self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)

    # --- HTTP -----------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/.well-known/openid-configuration":
                    if idp.delay:
                        time.sleep(idp.delay)
                    if idp.discovery_body is not None:
                        self._send(idp.discovery_status, idp.discovery_body, "text/html")
                    elif idp.discovery_status != 200:
                        self._send(idp.discovery_status, {"error": "boom"})
                    else:
                        self._send(200, idp.document())
                elif path == "/jwks":
                    self._send(200, {"keys": [idp.key.as_dict(private=False)]})
                elif path == "/userinfo":
                    auth = self.headers.get("Authorization", "")
                    grant = idp.access_tokens.get(auth.removeprefix("Bearer "))
                    if grant is None:
                        self._send(401, {"error": "invalid_token"})
                    elif idp.userinfo is not None:
                        self._send(200, idp.userinfo)
                    else:
                        info = {"sub": grant["sub"]}
                        for key in ("email", "email_verified", "name"):
                            if key in grant["claims"]:
                                info[key] = grant["claims"][key]
                        self._send(200, info)
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/token":
                    self._send(404, {"error": "not_found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                idp.token_requests.append(form)
                expected = base64.b64encode(
                    f"{idp.client_id}:{idp.client_secret}".encode()
                ).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    self._send(401, {"error": "invalid_client"})
                    return
                if form.get("grant_type") == "refresh_token":
                    self._refresh(form)
                    return
                grant = idp.codes.pop(form.get("code", ""), None)
                if grant is None or form.get("grant_type") != "authorization_code":
                    self._send(400, {"error": "invalid_grant"})
                    return
                query = grant["query"]
                verifier = form.get("code_verifier", "")
                challenge = (
                    base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                    .rstrip(b"=")
                    .decode()
                )
                if challenge != query["code_challenge"]:
                    self._send(400, {"error": "invalid_grant", "error_description": "PKCE"})
                    return
                if form.get("redirect_uri") != query["redirect_uri"]:
                    self._send(400, {"error": "invalid_grant", "error_description": "redirect"})
                    return
                self._send(200, idp._tokens(grant, nonce=query.get("nonce"), id_token=True))

            def _refresh(self, form: dict[str, str]) -> None:
                if idp.refresh_answer is not None:
                    self._send(*idp.refresh_answer)
                    return
                grant = idp.refresh_grants.pop(form.get("refresh_token", ""), None)
                if grant is None:
                    self._send(400, {"error": "invalid_grant"})
                    return
                answer = idp._tokens(grant, nonce=None, id_token=idp.refresh_id_token)
                if idp.refresh_expires_in is None:
                    answer.pop("expires_in")
                else:
                    answer["expires_in"] = idp.refresh_expires_in
                self._send(200, answer)

        return Handler
