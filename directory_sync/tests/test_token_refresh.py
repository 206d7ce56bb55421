"""Provider access-token refresh (billing_sync_jobs.md §2.13) against a local OIDC fake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from accounts import oidc
from accounts.models import AuthProvider
from accounts.tests.factories import ProviderFactory
from directory_sync import tasks
from directory_sync.selectors.tokens import providers_due_token_refresh
from directory_sync.services.tokens import RefreshOutcome, provider_access_token_refresh
from directory_sync.tests.google_graph_fake import OIDCFake

pytestmark = pytest.mark.django_db


@pytest.fixture
def idp(httpserver: HTTPServer) -> OIDCFake:
    oidc.clear_caches()
    return OIDCFake(httpserver)


def soon(minutes: int = 10) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def provider(idp: OIDCFake, *, adapter: str = "google_workspace", **state: Any) -> AuthProvider:
    adapter_state = {
        "access_token": "OLD_ACCESS",
        "refresh_token": "MY_REFRESH_TOKEN",
        "expires_at": soon(),
        "userinfo": {"sub": idp.subject},
        "claims": {"sub": idp.subject},
        **state,
    }
    return ProviderFactory(
        adapter=adapter,
        provisioner="custom",
        adapter_config=idp.adapter_config(),
        adapter_state=adapter_state,
    )


def test_refresh_merges_the_new_token_and_the_rotated_refresh_token(idp: OIDCFake) -> None:
    p = provider(idp)
    assert provider_access_token_refresh(provider=p) == RefreshOutcome.REFRESHED

    (form,) = idp.token_forms
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "MY_REFRESH_TOKEN"
    assert form["authorization"].startswith("Basic ")  # client credentials
    p.refresh_from_db()
    state = p.adapter_state
    assert state["access_token"] == "MY_ACCESS_TOKEN"
    # A rotated refresh token is stored (the original kept the old one, §2.13, which stops
    # working at IdPs that rotate).
    assert state["refresh_token"] == "OTHER_REFRESH_TOKEN"
    expires_at = datetime.fromisoformat(state["expires_at"])
    assert abs((expires_at - datetime.now(UTC)).total_seconds() - 3600) < 60
    assert state["claims"]["sub"] == idp.subject  # the refreshed ID token's (userinfo is kept)


def test_invalid_grant_drops_the_refresh_token(idp: OIDCFake) -> None:
    idp.fail("/oauth/token", 400, "oidc_token_error_invalid_grant.json")
    p = provider(idp)
    assert provider_access_token_refresh(provider=p) == RefreshOutcome.REVOKED
    p.refresh_from_db()
    assert "refresh_token" not in p.adapter_state
    assert p.adapter_state["access_token"] == "OLD_ACCESS"
    assert len(idp.token_forms) == 0 and len(idp.requests("/oauth/token")) == 1  # no retry
    # No longer selected for refresh.
    assert providers_due_token_refresh() == []


def test_id_token_about_someone_else_drops_the_refresh_token(idp: OIDCFake) -> None:
    p = provider(idp, claims={"sub": "someone-else"})
    assert provider_access_token_refresh(provider=p) == RefreshOutcome.REVOKED
    p.refresh_from_db()
    assert "refresh_token" not in p.adapter_state


def test_idp_down_keeps_the_state_after_retries(idp: OIDCFake) -> None:
    idp.fail("/oauth/token", 503, b"")
    p = provider(idp)
    before = dict(p.adapter_state)
    assert provider_access_token_refresh(provider=p) == RefreshOutcome.FAILED
    assert len(idp.requests("/oauth/token")) == 4  # 1 + 3 retries
    p.refresh_from_db()
    assert p.adapter_state == before


def test_selection(idp: OIDCFake) -> None:
    due = provider(idp)
    entra = provider(idp, adapter="microsoft_entra", expires_at=soon(-5))
    provider(idp, adapter="okta", expires_at=soon(45))  # not yet
    provider(idp, adapter="jumpcloud")  # JumpCloud has no token refresh
    mock_state = {"refresh_token": "x", "expires_at": soon()}
    ProviderFactory(adapter="mock", provisioner="custom", adapter_state=mock_state)
    disabled = provider(idp, adapter="okta")
    AuthProvider.objects.filter(pk=disabled.pk).update(disabled_at=datetime.now(UTC))
    # One provider per adapter per account: the rest in other accounts.
    assert {p.pk for p in providers_due_token_refresh()} == {due.pk, entra.pk}


def test_selection_skips_states_without_refresh_token_or_expiry(idp: OIDCFake) -> None:
    provider(idp, refresh_token=None)
    provider(idp, adapter="microsoft_entra", expires_at=None)
    provider(idp, adapter="okta", expires_at="not a date")
    assert providers_due_token_refresh() == []


def test_task_refreshes_the_due_providers(idp: OIDCFake) -> None:
    p = provider(idp)
    assert tasks.refresh_provider_tokens() == {"refreshed": 1}
    p.refresh_from_db()
    assert p.adapter_state["access_token"] == "MY_ACCESS_TOKEN"
