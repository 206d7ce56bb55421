"""The Google Workspace and Microsoft Entra directory adapters against local fakes serving the
spec's payloads (billing_sync_jobs.md §2.7 to §2.9, §5.2, §5.3)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from joserfc.jwk import RSAKey
from pytest_httpserver import HTTPServer

from accounts.models import AuthProvider
from accounts.providers import REQUIRED_SCOPES
from directory_sync.adapters import DIRECTORIES
from directory_sync.directory import (
    DirectoryGroup,
    DirectoryIdentity,
    SyncCountedFailure,
    SyncFailed,
    SyncLogOnly,
    SyncUnauthorized,
)
from directory_sync.tests.google_graph_fake import (
    DIRECTORY,
    GOOGLE_PAGE_TOKEN,
    GoogleFake,
    GraphFake,
    fixture,
)

ADMIN_SUB = "ADMIN_SUB_1"
OU_ENGINEERING = "id:03ph8a2z1enx4lx"
OU_DEVELOPERS = "id:03ph8a2z3k1b7qz"


@pytest.fixture
def google(httpserver: HTTPServer, settings: Any) -> GoogleFake:
    fake = GoogleFake(httpserver)
    settings.GOOGLE_ADMIN_API_BASE = fake.url
    settings.GOOGLE_TOKEN_ENDPOINT = f"{fake.url}/token"
    settings.DIRECTORY_SYNC_HTTP_TIMEOUT = (2.0, 5.0)
    return fake


@pytest.fixture
def graph(httpserver: HTTPServer, settings: Any) -> GraphFake:
    fake = GraphFake(httpserver)
    settings.MS_GRAPH_API_BASE = fake.url
    settings.DIRECTORY_SYNC_HTTP_TIMEOUT = (2.0, 5.0)
    return fake


def google_provider(fake: GoogleFake, *, key: bool = True, **state: Any) -> AuthProvider:
    config: dict[str, Any] = {"client_id": "cid", "client_secret": "secret"}
    if key:
        config["service_account_json_key"] = fake.service_account_key()
    adapter_state = {"access_token": "ADMIN_OAUTH_TOKEN", "userinfo": {"sub": ADMIN_SUB}, **state}
    return AuthProvider(
        adapter="google_workspace",
        provisioner="custom",
        adapter_config=config,
        adapter_state=adapter_state,
    )


def entra_provider(token: str = "GRAPH_TOKEN") -> AuthProvider:
    return AuthProvider(
        adapter="microsoft_entra", provisioner="custom", adapter_state={"access_token": token}
    )


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- Google -------------------------------------------------------------------------------------


def test_google_registered_under_its_adapter_name() -> None:
    assert set(DIRECTORIES) >= {"google_workspace", "microsoft_entra"}


def test_google_service_account_jwt_exchange(google: GoogleFake) -> None:
    directory = DIRECTORIES["google_workspace"](google_provider(google))
    list(directory.identities())

    assert len(google.token_forms) == 1  # one token for the whole directory
    form = google.token_forms[0]
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assertion = google.assertions[0]
    assert assertion["header"] == {"alg": "RS256", "typ": "JWT"}
    claims = assertion["claims"]
    assert claims["iss"] == google.service_account_key()["client_email"]
    assert claims["sub"] == ADMIN_SUB
    assert claims["aud"] == f"{google.url}/token"
    assert claims["scope"].split() == list(REQUIRED_SCOPES["google_workspace"])
    assert len(claims["scope"].split()) == 7
    assert claims["exp"] - claims["iat"] == 3600
    # The exchanged token, not the admin's, goes to the API.
    for request in google.requests(f"{DIRECTORY}/users"):
        assert request.headers["Authorization"] == "Bearer GOOGLE_0AUTH_ACCESS_TOKEN"


def test_google_users_two_pages_with_only_the_latest_page_token(google: GoogleFake) -> None:
    identities = list(DIRECTORIES["google_workspace"](google_provider(google)).identities())

    page1 = fixture("google_users_list")["users"]
    page2 = fixture("google_users_list_page2")["users"]
    assert [i.provider_identifier for i in identities] == [u["id"] for u in page1 + page2]
    assert identities[0] == DirectoryIdentity("USER_ID1", "Brian Manifold", "b@firez.xxx")
    requests = google.requests(f"{DIRECTORY}/users")
    assert len(requests) == 2
    for request in requests:
        assert request.args.get("customer") == "my_customer"
        assert request.args.get("showDeleted") == "false"
        assert request.args.get("query") == "isSuspended=false isArchived=false"
        assert request.args.get("maxResults") == "350"
        assert "fields" not in request.args
    assert "pageToken" not in requests[0].args
    assert requests[1].args.getlist("pageToken") == [GOOGLE_PAGE_TOKEN]


def test_google_groups_org_units_and_memberships(google: GoogleFake) -> None:
    directory = DIRECTORIES["google_workspace"](google_provider(google))
    identities = list(directory.identities())
    groups = list(directory.groups())
    memberships = set(directory.memberships())

    assert groups == [
        DirectoryGroup("G:GROUP_ID1", "Group:Infrastructure"),
        DirectoryGroup("G:GROUP_ID2", "Group:Engineering"),
        DirectoryGroup(f"OU:{OU_ENGINEERING}", "OrgUnit:Engineering"),
        DirectoryGroup(f"OU:{OU_DEVELOPERS}", "OrgUnit:Developers"),
    ]
    # Active USER members only (not the suspended user, the nested group, the customer).
    group_members = {m for m in memberships if m[0].startswith("G:")}
    assert group_members == {("G:GROUP_ID1", "USER_ID1"), ("G:GROUP_ID1", "USER_ID4")}
    # USER_ID1 is in /Engineering/Developers: that unit and its parent.
    ou = {m for m in memberships if m[0].startswith("OU:")}
    assert (f"OU:{OU_DEVELOPERS}", "USER_ID1") in ou
    assert (f"OU:{OU_ENGINEERING}", "USER_ID1") in ou
    paths = {
        u["id"]: u["orgUnitPath"]
        for u in fixture("google_users_list")["users"] + fixture("google_users_list_page2")["users"]
    }
    for _group_pid, user_id in ou:
        assert paths[user_id] in ("/Engineering", "/Engineering/Developers")
    assert {user for _, user in ou} == {u for u, p in paths.items() if p.startswith("/Engineering")}
    members_request = google.requests(f"{DIRECTORY}/groups/GROUP_ID1/members")[0]
    assert members_request.args.get("includeDerivedMembership") == "true"
    assert members_request.args.get("maxResults") == "350"
    orgunits_request = google.requests(f"{DIRECTORY}/customer/my_customer/orgunits")[0]
    assert orgunits_request.args.get("type") == "ALL"
    # memberships() reused what identities() and groups() read.
    assert len(google.requests(f"{DIRECTORY}/users")) == 2
    assert len(google.requests(f"{DIRECTORY}/groups")) == 1
    assert identities


def test_google_memberships_alone_fetch_what_they_need(google: GoogleFake) -> None:
    google.empty_org_units = True
    directory = DIRECTORIES["google_workspace"](google_provider(google))
    assert set(directory.memberships()) == {
        ("G:GROUP_ID1", "USER_ID1"),
        ("G:GROUP_ID1", "USER_ID4"),
    }
    assert [g.provider_identifier for g in directory.groups()] == ["G:GROUP_ID1", "G:GROUP_ID2"]


def test_google_without_key_uses_the_admin_token(google: GoogleFake) -> None:
    provider = google_provider(google, key=False)
    list(DIRECTORIES["google_workspace"](provider).identities())
    assert google.token_forms == []
    for request in google.requests(f"{DIRECTORY}/users"):
        assert request.headers["Authorization"] == "Bearer ADMIN_OAUTH_TOKEN"


def test_google_token_refused_is_counted_without_fallback(google: GoogleFake) -> None:
    google.fail("/token", 401, "google_token_error_401.json")
    directory = DIRECTORIES["google_workspace"](google_provider(google))
    with pytest.raises(SyncCountedFailure) as raised:
        list(directory.identities())
    assert raised.value.message == "Failed to fetch access token"
    assert google.requests(f"{DIRECTORY}/users") == []


def test_google_key_without_connected_admin_is_a_token_failure(google: GoogleFake) -> None:
    provider = google_provider(google, userinfo={})
    with pytest.raises(SyncCountedFailure, match="Failed to fetch access token"):
        list(DIRECTORIES["google_workspace"](provider).identities())
    assert google.token_forms == []


def test_google_unusable_key_is_a_token_failure(google: GoogleFake) -> None:
    provider = google_provider(google)
    provider.adapter_config["service_account_json_key"]["private_key"] = "not a key"
    with pytest.raises(SyncCountedFailure, match="Failed to fetch access token"):
        list(DIRECTORIES["google_workspace"](provider).identities())


MSG_401 = fixture("google_error_401")["error"]["message"]
MSG_403 = fixture("google_error_403")["error"]["message"]


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (401, "google_error_401.json", SyncUnauthorized, MSG_401),
        (403, "google_error_403.json", SyncCountedFailure, MSG_403),
        (429, {"error": {"code": 429, "message": "Quota exceeded"}}, SyncCountedFailure, None),
        (500, b"", SyncCountedFailure, "Google API is temporarily unavailable"),
        (503, b"<html>down</html>", SyncCountedFailure, "Google API is temporarily unavailable"),
        (400, b"<html>bad</html>", SyncLogOnly, None),
        (200, b"{not json", SyncLogOnly, None),
        (200, {"kind": "admin#directory#users"}, SyncLogOnly, None),  # no `users`
        (200, {"users": "nope"}, SyncLogOnly, None),
        (200, [1, 2], SyncLogOnly, None),
        (204, b"", SyncLogOnly, None),
        (302, b"", SyncLogOnly, None),
    ],
)
def test_google_error_classes(
    google: GoogleFake, status: int, body: Any, error: type[SyncFailed], message: str | None
) -> None:
    google.fail(f"{DIRECTORY}/users", status, body)
    with pytest.raises(SyncFailed) as raised:
        list(DIRECTORIES["google_workspace"](google_provider(google)).identities())
    assert type(raised.value) is error
    if message is not None:
        assert raised.value.message == message
    if status == 429:
        assert raised.value.message == "Quota exceeded"


def test_google_member_errors_abort(google: GoogleFake) -> None:
    google.fail(f"{DIRECTORY}/groups/GROUP_ID2/members", 403, "google_error_403.json")
    with pytest.raises(SyncCountedFailure, match="Admin SDK API has not been used"):
        list(DIRECTORIES["google_workspace"](google_provider(google)).memberships())


def test_google_transport_error_is_log_only(google: GoogleFake, settings: Any) -> None:
    settings.GOOGLE_ADMIN_API_BASE = closed_port_url()
    provider = google_provider(google)
    with pytest.raises(SyncLogOnly, match="Google API request failed"):
        list(DIRECTORIES["google_workspace"](provider).identities())


def test_google_token_endpoint_down_is_a_token_failure(google: GoogleFake, settings: Any) -> None:
    settings.GOOGLE_TOKEN_ENDPOINT = f"{closed_port_url()}/token"
    with pytest.raises(SyncCountedFailure, match="Failed to fetch access token"):
        list(DIRECTORIES["google_workspace"](google_provider(google)).identities())


def test_google_pasted_key_text_is_accepted(google: GoogleFake) -> None:
    provider = google_provider(google)
    provider.adapter_config["service_account_json_key"] = json.dumps(google.service_account_key())
    assert len(list(DIRECTORIES["google_workspace"](provider).identities())) == 4


def test_google_key_of_another_service_account_is_refused_by_the_fake(google: GoogleFake) -> None:
    # The fake verifies the assertion with the key's public half: a JWT signed by another key
    # gets Google's 401 and the sync reports a token failure.
    provider = google_provider(google)
    other = RSAKey.generate_key(2048).as_pem(private=True).decode()
    provider.adapter_config["service_account_json_key"]["private_key"] = other
    with pytest.raises(SyncCountedFailure, match="Failed to fetch access token"):
        list(DIRECTORIES["google_workspace"](provider).identities())


# --- Microsoft Entra ------------------------------------------------------------------------------


def test_entra_users_two_pages_by_next_link(graph: GraphFake) -> None:
    identities = list(DIRECTORIES["microsoft_entra"](entra_provider()).identities())

    assert identities == [
        DirectoryIdentity(
            "8fbddd1b-0e73-4cd0-ad38-2acea67814ee", "John Doe", "jdoe@example.onmicrosoft.com"
        ),
        DirectoryIdentity(
            "0b69cee0-b884-4cad-b7e3-ddd4d53034fb", "Jane Smith", "jsmith@example.onmicrosoft.com"
        ),
        DirectoryIdentity(
            "84f44a7c-dc31-4b2b-83f6-6cfcf0aa2456", "Bob Smith", "bsmith@example.onmicrosoft.com"
        ),
    ]
    first, second = graph.requests("/v1.0/users")
    assert first.args.get("$select") == (
        "id,accountEnabled,displayName,givenName,surname,mail,userPrincipalName"
    )
    assert first.args.get("$filter") == "accountEnabled eq true"
    assert first.args.get("$top") == "999"
    assert first.headers["Authorization"] == "Bearer GRAPH_TOKEN"
    assert second.args.get("$skiptoken")
    assert second.args.get("$filter") == "accountEnabled eq true"
    assert second.headers["Authorization"] == "Bearer GRAPH_TOKEN"


def test_entra_groups_and_enabled_transitive_members(graph: GraphFake) -> None:
    directory = DIRECTORIES["microsoft_entra"](entra_provider())
    groups = list(directory.groups())
    memberships = list(directory.memberships())

    assert groups == [
        DirectoryGroup("G:962f077e-caa2-4873-9d7d-a37cd58c06f5", "Group:Engineering"),
        DirectoryGroup("G:afb58e30-eb1e-4a46-913b-20c6ce476ce6", "Group:Finance"),
        DirectoryGroup("G:01e60a9c-4ee7-4253-87d9-8677e87a0a41", "Group:All"),
    ]
    engineering = "G:962f077e-caa2-4873-9d7d-a37cd58c06f5"
    assert memberships == [
        (engineering, "8fbddd1b-0e73-4cd0-ad38-2acea67814ee"),
        (engineering, "0b69cee0-b884-4cad-b7e3-ddd4d53034fb"),
    ]  # the disabled member is left out
    (groups_request,) = graph.requests("/v1.0/groups")
    assert groups_request.args.get("$select") == "id,displayName"
    assert groups_request.args.get("$top") == "999"
    members = graph.requests(
        "/v1.0/groups/962f077e-caa2-4873-9d7d-a37cd58c06f5/transitiveMembers/microsoft.graph.user"
    )[0]
    assert members.args.get("$select") == "id,accountEnabled"
    assert members.args.get("$top") == "999"
    assert "ConsistencyLevel" not in members.headers


MSG_GRAPH_401 = fixture("graph_error_401")["error"]["message"]
MSG_GRAPH_403 = fixture("graph_error_403")["error"]["message"]


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (401, "graph_error_401.json", SyncUnauthorized, MSG_GRAPH_401),
        (403, "graph_error_403.json", SyncCountedFailure, MSG_GRAPH_403),
        (
            429,
            {"error": {"code": "TooManyRequests", "message": "Too many requests"}},
            SyncCountedFailure,
            "Too many requests",
        ),
        (500, b"", SyncCountedFailure, "Microsoft Graph API is temporarily unavailable"),
        (401, b"", SyncLogOnly, None),
        (200, b"]]", SyncLogOnly, None),
        (200, {"@odata.context": "x"}, SyncLogOnly, None),  # no `value`
    ],
)
def test_entra_error_classes(
    graph: GraphFake, status: int, body: Any, error: type[SyncFailed], message: str | None
) -> None:
    graph.fail("/v1.0/groups", status, body)
    with pytest.raises(SyncFailed) as raised:
        list(DIRECTORIES["microsoft_entra"](entra_provider()).groups())
    assert type(raised.value) is error
    if message is not None:
        assert raised.value.message == message


def test_entra_next_link_elsewhere_is_not_followed(graph: GraphFake) -> None:
    graph.fail(
        "/v1.0/groups",
        200,
        {"value": [], "@odata.nextLink": "https://evil.example.com/v1.0/groups?$skiptoken=x"},
    )
    with pytest.raises(SyncLogOnly, match="foreign next link"):
        list(DIRECTORIES["microsoft_entra"](entra_provider()).groups())


def test_entra_transport_error_is_log_only(graph: GraphFake, settings: Any) -> None:
    settings.MS_GRAPH_API_BASE = closed_port_url()
    with pytest.raises(SyncLogOnly, match="Microsoft Graph API request failed"):
        list(DIRECTORIES["microsoft_entra"](entra_provider()).identities())


def test_entra_without_token_is_a_token_failure(graph: GraphFake) -> None:
    with pytest.raises(SyncCountedFailure, match="Failed to fetch access token"):
        list(DIRECTORIES["microsoft_entra"](entra_provider(token="")).identities())
    assert graph.requests("/v1.0/users") == []


def test_reading_is_lazy_page_by_page(graph: GraphFake) -> None:
    identities = DIRECTORIES["microsoft_entra"](entra_provider()).identities()
    assert graph.requests("/v1.0/users") == []
    next(identities)
    assert len(graph.requests("/v1.0/users")) == 1
    next(identities)
    assert len(graph.requests("/v1.0/users")) == 1
    next(identities)
    assert len(graph.requests("/v1.0/users")) == 2
