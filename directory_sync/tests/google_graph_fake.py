"""Fakes for the Google / Microsoft Graph directory adapters and the provider token refresh
(billing_sync_jobs.md §5.2, §5.3, §5.6), on pytest-httpserver's real local HTTP server and
serving the spec's payloads from tests/fixtures/external. Nothing of ours is patched: settings
point the adapters at the server.

* `GoogleFake` — token endpoint (decodes and verifies the service-account JWT with the key's
  public half and records its claims), users in two pages (`nextPageToken`), groups, org units,
  group members; `fail(path, status, body)` scripts an error.
* `GraphFake` — users in two pages (`@odata.nextLink` rewritten to the server), groups,
  transitive members.
* `OIDCFake` — discovery, JWKS, a refresh-token grant signing real ID tokens, userinfo.

Every request is in `server.log` (werkzeug requests), to assert query strings and headers.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "external"


def fixture(name: str) -> Any:
    """A payload file's JSON (`google_users_list` or `google_users_list.json`), a fresh copy."""
    filename = name if name.endswith(".json") else f"{name}.json"
    return json.loads((FIXTURES / filename).read_text())


def json_response(body: Any, status: int = 200) -> Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return Response(data, status=status, content_type="application/json")


class _Fake:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.failures: dict[str, tuple[int, Any]] = {}
        server.expect_request(re.compile(r".*")).respond_with_handler(self._dispatch)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def fail(self, path: str, status: int, body: Any = b"") -> None:
        """Answer `path` with `status` and `body` (a fixture name, JSON, bytes or text)."""
        if isinstance(body, str) and body.endswith(".json"):
            body = fixture(body)
        self.failures[path] = (status, body)

    def requests(self, path: str) -> list[Request]:
        return [request for request, _ in self.server.log if request.path == path]

    def _dispatch(self, request: Request) -> Response:
        if request.path in self.failures:
            status, body = self.failures[request.path]
            return json_response(body, status)
        return self.handle(request)

    def handle(self, request: Request) -> Response:
        raise NotImplementedError


# --- Google -------------------------------------------------------------------------------------

GOOGLE_PAGE_TOKEN = "PAGE2TOKEN"
DIRECTORY = "/admin/directory/v1"


def service_account_key(key: RSAKey, **overrides: Any) -> dict[str, Any]:
    """A service-account JSON key (the fields of GOOGLE_KEY_FIELDS) around `key`."""
    return {
        "type": "service_account",
        "project_id": "firezone-test",
        "private_key_id": "kid-1",
        "private_key": key.as_pem(private=True).decode(),
        "client_email": "firezone-directory-sync@firezone-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/x",
        "universe_domain": "googleapis.com",
        **overrides,
    }


class GoogleFake(_Fake):
    def __init__(self, server: HTTPServer) -> None:
        self.key = RSAKey.generate_key(2048)
        self.assertions: list[dict[str, Any]] = []
        self.token_forms: list[dict[str, str]] = []
        self.empty_org_units = False
        super().__init__(server)

    def service_account_key(self, **overrides: Any) -> dict[str, Any]:
        return service_account_key(self.key, **overrides)

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/token" and request.method == "POST":
            form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
            self.token_forms.append(form)
            try:
                token = jwt.decode(form["assertion"], self.key)
            except (JoseError, ValueError):  # signed by another key
                return json_response(fixture("google_token_error_401"), 401)
            self.assertions.append({"header": token.header, "claims": token.claims})
            return json_response(fixture("google_token_response"))
        if path == f"{DIRECTORY}/users":
            second = request.args.get("pageToken") == GOOGLE_PAGE_TOKEN
            page = fixture("google_users_list_page2" if second else "google_users_list")
            if not second:
                page["nextPageToken"] = GOOGLE_PAGE_TOKEN
            return json_response(page)
        if path == f"{DIRECTORY}/groups":
            return json_response(fixture("google_groups_list"))
        if path == f"{DIRECTORY}/customer/my_customer/orgunits":
            empty = "google_orgunits_list_empty" if self.empty_org_units else None
            return json_response(fixture(empty or "google_orgunits_list"))
        if path == f"{DIRECTORY}/groups/GROUP_ID1/members":
            return json_response(fixture("google_group_members_list"))
        if path == f"{DIRECTORY}/groups/GROUP_ID2/members":
            return json_response(fixture("google_group_members_list_empty"))
        return json_response({"error": {"code": 404, "message": f"no {path}"}}, 404)


# --- Microsoft Graph ------------------------------------------------------------------------------


class GraphFake(_Fake):
    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/v1.0/users":
            if request.args.get("$skiptoken"):
                return json_response(fixture("graph_users_page2"))
            page = fixture("graph_users_page")
            # The fixture's link points at graph.microsoft.com: the same query, on this server.
            link = page["@odata.nextLink"]
            page["@odata.nextLink"] = link.replace("https://graph.microsoft.com", self.url)
            return json_response(page)
        if path == "/v1.0/groups":
            return json_response(fixture("graph_groups_page"))
        if path.startswith("/v1.0/groups/") and path.endswith(
            "/transitiveMembers/microsoft.graph.user"
        ):
            if path.split("/")[3] == "962f077e-caa2-4873-9d7d-a37cd58c06f5":
                return json_response(fixture("graph_group_transitive_members"))
            return json_response({"value": []})
        return json_response({"error": {"code": "NotFound", "message": f"no {path}"}}, 404)


# --- OIDC (token refresh) -----------------------------------------------------------------------


class OIDCFake(_Fake):
    client_id = "portal-client"
    client_secret = "s3cret"

    def __init__(self, server: HTTPServer) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.subject = "353690423699814251281"
        self.token_forms: list[dict[str, str]] = []
        super().__init__(server)

    @property
    def discovery_uri(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def adapter_config(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "discovery_document_uri": self.discovery_uri,
            "response_type": "code",
            "scope": "openid email profile offline_access",
        }

    def id_token(self, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.url,
            "sub": self.subject,
            "aud": self.client_id,
            "email": "ada@example.com",
            "iat": now,
            "exp": now + 3600,
            **claims,
        }
        return jwt.encode({"alg": "RS256", "kid": "k1"}, payload, self.key)

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/.well-known/openid-configuration":
            document = fixture("oidc_discovery")
            for key, value in document.items():
                if isinstance(value, str) and value.startswith("https://idp.example.com"):
                    document[key] = value.replace("https://idp.example.com", self.url)
            document["issuer"] = self.url
            return json_response(document)
        if path == "/.well-known/jwks.json":
            return json_response({"keys": [self.key.as_dict(private=False)]})
        if path == "/oauth/token":
            form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
            form["authorization"] = request.headers.get("Authorization", "")
            self.token_forms.append(form)
            body = fixture("oidc_token_refresh_response")
            body["id_token"] = self.id_token()
            return json_response(body)
        if path == "/userinfo":
            if request.headers.get("Authorization") != "Bearer MY_ACCESS_TOKEN":
                return json_response({"error": "invalid_token"}, 401)
            return json_response(fixture("oidc_userinfo"))
        return json_response({"error": "not_found"}, 404)
