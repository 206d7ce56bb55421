"""The Okta directory (billing_sync_jobs.md §2.10, §2.7, §5.4) against a fake Okta on a local
port (directory_sync/tests/fakes.py)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import AuthProvider
from accounts.tests.factories import ProviderFactory
from directory_sync.adapters import DIRECTORIES
from directory_sync.directory import (
    DirectoryGroup,
    DirectoryIdentity,
    SyncCountedFailure,
    SyncFailed,
    SyncLogOnly,
)
from directory_sync.tests.fakes import OktaFake, fixture, okta_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

JOHN, JANE = "00ue1rr3zgV1DjyfL5d7", "00ueap8xflioRLpKn5d7"
GROUPS = ("00gezqhvv4IFj2Avg5d7", "00gezqfqxwa2ohLhp5d7", "00ge1rmoufwOX8isq5d7")


def jwt(exp: float | None) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims: dict[str, Any] = {"sub": "admin"} if exp is None else {"sub": "admin", "exp": int(exp)}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def okta_provider(okta: OktaFake, token: str | None = None) -> AuthProvider:
    return ProviderFactory(
        adapter=AuthProvider.Adapter.OKTA,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config={
            "client_id": "okta-client",
            "client_secret": "okta-secret",
            "okta_account_domain": "example.okta.com",
            "api_base_url": okta.url,
        },
        adapter_state={"access_token": token or jwt(time.time() + 3600), "refresh_token": "r"},
    )


def test_registered() -> None:
    assert {"okta", "jumpcloud", "mock"} <= set(DIRECTORIES)


def test_users_follow_the_next_links_and_skip_the_suspended(okta: OktaFake) -> None:
    provider = okta_provider(okta)
    identities = list(DIRECTORIES["okta"](provider).identities())
    assert identities == [
        DirectoryIdentity(JOHN, "John Doe", "jdoe@example.com"),
        DirectoryIdentity(JANE, "Jane Smith", "jsmith@example.com"),
    ]
    assert [(r.path, r.query) for r in okta.requests] == [
        ("/api/v1/users", {"limit": "200"}),
        ("/api/v1/users", {"after": "1", "limit": "200"}),
    ]
    for request in okta.requests:
        assert (
            request.headers["Authorization"] == f"Bearer {provider.adapter_state['access_token']}"
        )
        assert request.headers["Content-Type"] == (
            "application/json; okta-response=omitCredentials,omitCredentialsLinks"
        )


def test_pages_are_read_lazily(okta: OktaFake) -> None:
    identities = DIRECTORIES["okta"](okta_provider(okta)).identities()
    assert next(identities).provider_identifier == JOHN
    assert len(okta.requests) == 1


def test_groups_and_active_members(okta: OktaFake) -> None:
    directory = DIRECTORIES["okta"](okta_provider(okta))
    assert list(directory.groups()) == [
        DirectoryGroup("G:00gezqhvv4IFj2Avg5d7", "Group:DevOps"),
        DirectoryGroup("G:00gezqfqxwa2ohLhp5d7", "Group:Engineering"),
        DirectoryGroup("G:00ge1rmoufwOX8isq5d7", "Group:Everyone"),
    ]
    # The SUSPENDED member of every group is left out; the groups are not listed again.
    assert list(directory.memberships()) == [(f"G:{g}", JOHN) for g in GROUPS]
    assert okta.paths() == ["/api/v1/groups", *(f"/api/v1/groups/{g}/users" for g in GROUPS)]
    assert "Content-Type" not in okta.requests[0].headers


def test_memberships_alone_list_the_groups(okta: OktaFake) -> None:
    okta.members[GROUPS[1]] = [[fixture("okta_users")[1]], [fixture("okta_users")[0]]]
    tuples = list(DIRECTORIES["okta"](okta_provider(okta)).memberships())
    assert tuples == [
        (f"G:{GROUPS[0]}", JOHN),
        (f"G:{GROUPS[1]}", JANE),
        (f"G:{GROUPS[1]}", JOHN),
        (f"G:{GROUPS[2]}", JOHN),
    ]
    assert okta.paths()[0] == "/api/v1/groups"


WWW_AUTHENTICATE = (
    'Bearer authorization_uri="https://example.okta.com/oauth2/v1/authorize", '
    'realm="https://example.okta.com", scope="okta.users.read", error="invalid_token", '
    'error_description="The access token is invalid.", resource="/api/v1/users"'
)


HTML = {"Content-Type": "text/html"}
UNAVAILABLE = "Okta API is temporarily unavailable"
Counted = SyncCountedFailure


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "message"),
    [
        (401, fixture("okta_error_401"), {}, Counted, "E0000011 => Invalid token provided"),
        (
            403,
            fixture("okta_error_403_scope"),
            {},
            SyncCountedFailure,
            "E0000006 => You do not have permission to perform the requested action",
        ),
        (
            429,
            fixture("okta_error_429"),
            {},
            SyncCountedFailure,
            "E0000047 => API call exceeded rate limit due to too many requests.",
        ),
        # §2.7 quirk fixed: a 401/403 without Okta's JSON is the counted status text.
        (
            401,
            "",
            {"WWW-Authenticate": WWW_AUTHENTICATE, "Content-Type": "text/plain"},
            SyncCountedFailure,
            "401 - Unauthorized",
        ),
        (403, "<html>Forbidden</html>", HTML, Counted, "403 - Forbidden"),
        (404, "<html>nope</html>", HTML, SyncLogOnly, None),
        (500, "", {}, Counted, UNAVAILABLE),
        (503, "<html>down</html>", HTML, Counted, UNAVAILABLE),
        (200, "[{not json", {}, SyncLogOnly, None),
        (200, {"users": []}, {}, SyncLogOnly, None),
        (302, "", {"Location": "https://elsewhere.example.com/"}, SyncLogOnly, None),
    ],
)
def test_errors(
    okta: OktaFake,
    status: int,
    body: Any,
    headers: dict[str, str],
    error: type[SyncFailed],
    message: str | None,
) -> None:
    okta.fail("/api/v1/users", status, body, headers)
    with pytest.raises(SyncFailed) as raised:
        list(DIRECTORIES["okta"](okta_provider(okta)).identities())
    assert type(raised.value) is error
    if message is not None:
        assert raised.value.message == message
    assert len(okta.requests) == 1


def test_error_on_a_later_page(okta: OktaFake) -> None:
    okta.fail(f"/api/v1/groups/{GROUPS[1]}/users", 500)
    directory = DIRECTORIES["okta"](okta_provider(okta))
    tuples = []
    with pytest.raises(SyncCountedFailure, match="temporarily unavailable"):
        for pair in directory.memberships():
            tuples.append(pair)
    assert tuples == [(f"G:{GROUPS[0]}", JOHN)]


def test_transport_error_is_log_only(okta: OktaFake) -> None:
    provider = okta_provider(okta)
    okta.stop()
    with pytest.raises(SyncLogOnly, match="Okta API request failed"):
        list(DIRECTORIES["okta"](provider).groups())


def test_an_expiring_token_is_reread_from_the_database(okta: OktaFake) -> None:
    provider = okta_provider(okta, token=jwt(time.time() + 60))
    fresh = jwt(time.time() + 3600)
    AuthProvider.objects.filter(pk=provider.pk).update(
        adapter_state={"access_token": fresh, "refresh_token": "r"}
    )
    list(DIRECTORIES["okta"](provider).groups())
    assert okta.requests[0].headers["Authorization"] == f"Bearer {fresh}"


@pytest.mark.parametrize("token", ["opaque-token", jwt(None)])
def test_a_token_without_expiry_is_reread(okta: OktaFake, token: str) -> None:
    provider = okta_provider(okta, token=token)
    AuthProvider.objects.filter(pk=provider.pk).update(adapter_state={"access_token": "new"})
    list(DIRECTORIES["okta"](provider).groups())
    assert okta.requests[0].headers["Authorization"] == "Bearer new"


def test_a_provider_disabled_meanwhile_stops_the_sync(okta: OktaFake) -> None:
    provider = okta_provider(okta, token=jwt(time.time() - 10))
    AuthProvider.objects.filter(pk=provider.pk).update(disabled_at=timezone.now())
    with pytest.raises(SyncLogOnly):
        list(DIRECTORIES["okta"](provider).groups())
    assert okta.requests == []


def test_the_courtesy_delay_precedes_every_request(okta: OktaFake, settings: Any) -> None:
    settings.OKTA_REQUEST_DELAY = 0.2
    started = time.monotonic()
    list(DIRECTORIES["okta"](okta_provider(okta)).identities())
    assert time.monotonic() - started >= 0.4
