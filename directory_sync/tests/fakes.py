"""Fake Okta and WorkOS APIs on real local ports (billing_sync_jobs.md §5.4, §5.5), built on
pytest-httpserver from the payloads in tests/fixtures/external (okta_*, workos_*). Our adapters
and the WorkOS SDK talk HTTP to them; nothing of ours is patched.

Both record every request (`requests`: method, path, query, headers, JSON body) and can be told
to fail: `fail(path_prefix, status, body=…, headers=…)` answers every matching request with it.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "external"
WORKOS_API_KEY = "sk_test_workos_fake"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Failure:
    status: int
    body: str | bytes
    headers: dict[str, str]


@dataclass
class _Fake:
    server: HTTPServer
    requests: list[Recorded] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def fail(
        self,
        path: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer every request whose path starts with `path` with `status` (a JSON body when
        `body` is not text)."""
        text = body if isinstance(body, str | bytes) else json.dumps(body or {})
        self.failures[path] = Failure(status, text, headers or {})

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    def handle(self, request: Request) -> Response:
        raw = request.get_data()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.args.items()),
                dict(request.headers.items()),
                body,
            )
        )
        for prefix, failure in self.failures.items():
            if request.path.startswith(prefix):
                content_type = failure.headers.get("Content-Type", "application/json")
                response = Response(failure.body, status=failure.status, content_type=content_type)
                for name, value in failure.headers.items():
                    response.headers[name] = value
                return response
        return self.route(request, body)

    def route(self, request: Request, body: Any) -> Response:
        raise NotImplementedError


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


def _start(fake_class: type[_Fake], **kwargs: Any) -> Any:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    fake = fake_class(server=server, **kwargs)
    server.expect_request(re.compile(".*")).respond_with_handler(fake.handle)
    server.start()
    return fake


# --- Okta (§5.4) ----------------------------------------------------------------------------------


@dataclass
class OktaFake(_Fake):
    """`users`, `groups` and `members[group_id]` are lists of pages (each a JSON array); page n
    links to page n+1 with `link: <…?after=<n+1>&limit=200>; rel="next"` beside its `rel="self"`
    link. By default: okta_users.json in pages of 2 (so the SUSPENDED user is on page 2),
    okta_groups.json, okta_group_users.json as the members of every group."""

    users: list[list[dict[str, Any]]] = field(default_factory=list)
    groups: list[list[dict[str, Any]]] = field(default_factory=list)
    members: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)
    default_members: list[list[dict[str, Any]]] = field(default_factory=list)

    def route(self, request: Request, body: Any) -> Response:
        path = request.path
        if path == "/api/v1/users":
            pages = self.users
        elif path == "/api/v1/groups":
            pages = self.groups
        elif match := re.fullmatch(r"/api/v1/groups/([^/]+)/users", path):
            pages = self.members.get(match.group(1), self.default_members)
        else:
            return _json({"errorCode": "E0000022", "errorSummary": "Not found"}, 404)
        index = int(request.args.get("after", "0"))
        page = pages[index] if index < len(pages) else []
        response = _json(page)
        base = f"{self.url}{path}"
        if index + 1 < len(pages):
            response.headers.add("link", f'<{base}?after={index + 1}&limit=200>; rel="next"')
        response.headers.add("link", f'<{base}?limit=200>; rel="self"')
        return response


def start_okta() -> OktaFake:
    users = fixture("okta_users")
    return _start(
        OktaFake,
        users=[users[:2], users[2:]],
        groups=[fixture("okta_groups")],
        default_members=[fixture("okta_group_users")],
    )


# --- WorkOS (§5.5) --------------------------------------------------------------------------------


def _current_user(user: dict[str, Any]) -> dict[str, Any]:
    """The fixtures predate the `email` field today's API (and the SDK's model) has: the primary
    address."""
    primary = next((e["value"] for e in user.get("emails", []) if e.get("primary")), None)
    return {"email": primary, **user}


def _current_org(org: dict[str, Any]) -> dict[str, Any]:
    """Likewise `metadata` and `external_id` on organisations."""
    return {"metadata": {}, "external_id": None, **org}


@dataclass
class WorkOSFake(_Fake):
    """Organisations (created by `POST /organizations`, or `add_organization()`), the directories
    of each (`directories[org_id]`, workos_directories.json for the fixture's organisation), the
    users in the pages of workos_directory_users*.json (cursor = `list_metadata.after`), the
    groups of workos_directory_groups.json, portal links (workos_portal_link.json)."""

    organizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    directories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    user_pages: list[dict[str, Any]] = field(default_factory=list)
    group_pages: list[dict[str, Any]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def add_organization(self) -> dict[str, Any]:
        org = _current_org(fixture("workos_organization"))
        self.organizations[org["id"]] = org
        self.directories[org["id"]] = fixture("workos_directories")["data"]
        return org

    def route(self, request: Request, body: Any) -> Response:
        if request.headers.get("Authorization") != f"Bearer {WORKOS_API_KEY}":
            return _json(fixture("workos_error_401"), 401)
        path, method = request.path, request.method
        if path == "/organizations" and method == "POST":
            org = _current_org(fixture("workos_organization"))
            org["id"] = f"org_fake{next(self._ids):020d}"
            org["name"] = body["name"]
            self.organizations[org["id"]] = org
            self.directories.setdefault(org["id"], [])
            return _json(org, 201)
        if match := re.fullmatch(r"/organizations/([^/]+)", path):
            found = self.organizations.get(match.group(1))
            return _json(found) if found else _json({"message": "Not found"}, 404)
        if path == "/portal/generate_link" and method == "POST":
            if body.get("organization") not in self.organizations:
                return _json(fixture("workos_error_422"), 422)
            return _json(fixture("workos_portal_link"), 201)
        if path == "/directories":
            data = self.directories.get(request.args.get("organization_id", ""), [])
            return _json({"object": "list", "data": data, "list_metadata": {}})
        if path == "/directory_users":
            return _json(self._page(self.user_pages, request.args.get("after")))
        if path == "/directory_groups":
            return _json(self._page(self.group_pages, request.args.get("after")))
        return _json({"message": "Not found"}, 404)

    @staticmethod
    def _page(pages: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
        if after is None:
            return copy.deepcopy(pages[0])
        for index, page in enumerate(pages[:-1]):
            if page["list_metadata"]["after"] == after:
                return copy.deepcopy(pages[index + 1])
        return {"object": "list", "data": [], "list_metadata": {"before": None, "after": None}}


def start_workos() -> WorkOSFake:
    users = [fixture("workos_directory_users"), fixture("workos_directory_users_page2")]
    for page in users:
        page["data"] = [_current_user(u) for u in page["data"]]
    return _start(WorkOSFake, user_pages=users, group_pages=[fixture("workos_directory_groups")])


# --- pytest fixtures (import them into a test module) ---------------------------------------------


@pytest.fixture(name="okta")
def okta_fixture(settings: Any) -> Iterator[OktaFake]:
    """The fake Okta, without the courtesy sleep between requests."""
    settings.OKTA_REQUEST_DELAY = 0
    settings.OKTA_REQUEST_TIMEOUT = 5
    fake = start_okta()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(name="workos")
def workos_fixture(settings: Any) -> Iterator[WorkOSFake]:
    """The fake WorkOS, with the SDK pointed at it (key set, no retries)."""
    fake = start_workos()
    settings.WORKOS_API_KEY = WORKOS_API_KEY
    settings.WORKOS_BASE_URL = fake.url
    settings.WORKOS_MAX_RETRIES = 0
    settings.WORKOS_REQUEST_TIMEOUT = 5
    try:
        yield fake
    finally:
        fake.stop()
