"""Settings → API Clients (portal.md §4.12) with the Django test client: the beta gate, the
list, the new client → token wizard, the client page and its events, the edit page."""

from __future__ import annotations

import html
import uuid
from datetime import UTC, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Account, Actor, Token
from accounts.services.tokens import authenticate
from accounts.services.tokens_admin import api_client_token_create
from accounts.tests.factories import (
    ALL_FEATURES,
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    subject_for,
)
from accounts.tests.portal import UA, Acme, inject_session, make_acme

pytestmark = pytest.mark.django_db

BASE = "/acme/settings/api_clients"


@pytest.fixture(autouse=True)
def _features(settings: Any) -> None:
    settings.FEATURES = {**settings.FEATURES, "rest_api": True}


@pytest.fixture
def acme() -> Acme:
    return make_acme()


@pytest.fixture
def client(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _text(response: Any) -> str:
    return html.unescape(response.content.decode())


def _api_client(account: Account, name: str = "CI", **kwargs: Any) -> Actor:
    return ActorFactory(account=account, api_client=True, name=name, **kwargs)


def _token(acme: Acme, actor: Actor, name: str | None = "deploy") -> tuple[Token, str]:
    subject = subject_for(acme.admin, identity=acme.admin_identity)
    issued = api_client_token_create(subject=subject, actor=actor, name=name)
    return Token.objects.get(pk=issued.token.pk), issued.encoded


def _without_rest_api(acme: Acme) -> None:
    acme.account.features = {**ALL_FEATURES, "rest_api": False}
    acme.account.save()


# --- access --------------------------------------------------------------------------------------


def test_regular_user_gets_404(acme: Acme) -> None:
    api = _api_client(acme.account)
    user = ActorFactory(account=acme.account)
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, identity)
    paths = [BASE, f"{BASE}/beta", f"{BASE}/new", f"{BASE}/{api.pk}", f"{BASE}/{api.pk}/edit"]
    paths.append(f"{BASE}/{api.pk}/new_token")
    for path in paths:
        assert c.get(path).status_code == 404, path
        assert c.post(path, {"action": "delete", "name": "x"}).status_code == 404, path
    assert Actor.objects.filter(pk=api.pk).exists()


def test_other_accounts_client_is_404(client: Client) -> None:
    other = AccountFactory()
    foreign = _api_client(other, "Foreign")
    for suffix in ("", "/edit", "/new_token"):
        path = f"{BASE}/{foreign.pk}{suffix}"
        assert client.get(path).status_code == 404, path
        for action in ("delete", "disable", "revoke_all"):
            assert client.post(path, {"action": action}).status_code == 404, path
    assert Actor.objects.get(pk=foreign.pk).disabled_at is None


@pytest.mark.parametrize("bad", ["nope", "123", str(uuid.uuid4())])
def test_malformed_or_unknown_id_is_404(client: Client, bad: str) -> None:
    for suffix in ("", "/edit", "/new_token"):
        assert client.get(f"{BASE}/{bad}{suffix}").status_code == 404


def test_other_actor_types_are_404(client: Client, acme: Acme) -> None:
    sa = ActorFactory(account=acme.account, service_account=True)
    for actor in (acme.admin, sa):
        for suffix in ("", "/edit", "/new_token"):
            assert client.get(f"{BASE}/{actor.pk}{suffix}").status_code == 404


# --- beta gate -----------------------------------------------------------------------------------


def test_without_rest_api_pages_redirect_to_beta(client: Client, acme: Acme) -> None:
    _without_rest_api(acme)
    api = _api_client(acme.account)
    for path in (BASE, f"{BASE}/new", f"{BASE}/{api.pk}", f"{BASE}/{api.pk}/edit"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == f"{BASE}/beta", path
    response = client.post(f"{BASE}/{api.pk}", {"action": "delete"})
    assert response["Location"] == f"{BASE}/beta"
    assert Actor.objects.filter(pk=api.pk).exists()


def test_beta_page_and_request(client: Client, acme: Acme) -> None:
    _without_rest_api(acme)
    response = client.get(f"{BASE}/beta")
    assert response.status_code == 200
    text = _text(response)
    assert "<title>API Clients · Firezone</title>" in text
    assert "API Clients are used to manage Firezone configuration through a REST API." in text
    assert "/swaggerui" in text
    assert "REST API Beta" in text and "The REST API is currently in closed beta." in text
    assert 'id="beta-request"' in text and "Click here to request access." in text

    response = client.post(f"{BASE}/beta", {"action": "request_beta"})
    assert response.status_code == 302 and response["Location"] == f"{BASE}/beta"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "REST API Beta Request - acme"
    assert message.to == ["support@firezone.dev"] and message.reply_to == ["admin@acme.test"]
    assert str(acme.admin.pk) in message.body and "Admin" in message.body
    text = _text(client.get(f"{BASE}/beta"))
    assert "Your request to join the closed beta has been made." in text
    assert 'id="beta-request"' not in text


def test_beta_page_redirects_when_enabled(client: Client) -> None:
    response = client.get(f"{BASE}/beta")
    assert response.status_code == 302 and response["Location"] == BASE


def test_new_token_needs_the_global_switch(client: Client, acme: Acme, settings: Any) -> None:
    api = _api_client(acme.account)
    settings.FEATURES = {**settings.FEATURES, "rest_api": False}
    assert client.get(f"{BASE}/{api.pk}/new_token").status_code == 404


# --- list ----------------------------------------------------------------------------------------


def test_list(client: Client, acme: Acme) -> None:
    active = _api_client(acme.account, "Terraform")
    disabled = _api_client(acme.account, "Old", disabled_at=timezone.now())
    ActorFactory(account=acme.account, service_account=True, name="Backend")
    response = client.get(BASE)
    assert response.status_code == 200
    text = _text(response)
    assert "<title>API Clients · Firezone</title>" in text
    assert "https://www.firezone.dev/kb/reference/rest-api?utm_source=product" in text
    assert "Add API Client" in text and f'href="{BASE}/new"' in text
    assert f'id="api-client-{active.pk}"' in text and f'href="{BASE}/{active.pk}">Terraform' in text
    assert f'id="api-client-{disabled.pk}"' in text
    assert '<span class="badge badge-ok">Active</span>' in text
    assert '<span class="badge badge-err">Disabled</span>' in text
    assert "Backend" not in text and f"api-client-{acme.admin.pk}" not in text
    assert "Search by Name or Email" in text
    assert "created at" in text


def test_list_filters_and_empty(client: Client, acme: Acme) -> None:
    assert "No API Clients to display." in _text(client.get(BASE))
    a = _api_client(acme.account, "Terraform")
    b = _api_client(acme.account, "GitHub", disabled_at=timezone.now())
    text = _text(client.get(BASE, {"actors_filter[name_or_email]": "terra"}))
    assert f"api-client-{a.pk}" in text and f"api-client-{b.pk}" not in text
    text = _text(client.get(BASE, {"actors_filter[status]": "disabled"}))
    assert f"api-client-{b.pk}" in text and f"api-client-{a.pk}" not in text
    text = _text(client.get(BASE, {"actors_filter[name_or_email]": "zzz"}))
    assert "There are no results matching your filters." in text


def _count_queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    _api_client(acme.account, "first")
    client.get(BASE)
    few = _count_queries(client, BASE)
    for i in range(50):
        _api_client(acme.account, f"client {i}")
    many = _count_queries(client, BASE)
    assert few == many


def test_detail_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    api = _api_client(acme.account)
    _token(acme, api)
    client.get(f"{BASE}/{api.pk}")
    few = _count_queries(client, f"{BASE}/{api.pk}")
    for i in range(20):
        _token(acme, api, f"t{i}")
    many = _count_queries(client, f"{BASE}/{api.pk}")
    assert few == many


# --- new client and token ------------------------------------------------------------------------


def test_new_client_form(client: Client) -> None:
    text = _text(client.get(f"{BASE}/new"))
    assert "<title>New API Client · Firezone</title>" in text
    assert "API Client details" in text
    assert "placeholder=\"E.g. 'GitHub Actions' or 'Terraform'\"" in text
    assert "Describe what this API client will be used for." in text
    assert "Next: Add a token" in text


@pytest.mark.parametrize(
    ("name", "error"), [("", "can't be blank"), ("x" * 256, "should be at most 255 character(s)")]
)
def test_new_client_validation(client: Client, name: str, error: str) -> None:
    response = client.post(f"{BASE}/new", {"name": name})
    assert response.status_code == 200 and error in _text(response)
    assert not Actor.objects.filter(type=Actor.Type.API_CLIENT).exists()


def test_new_client_then_token(client: Client, acme: Acme) -> None:
    response = client.post(f"{BASE}/new", {"name": "CI"})
    actor = Actor.objects.get(type=Actor.Type.API_CLIENT, name="CI")
    assert actor.account_id == acme.account.pk
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}/{actor.pk}/new_token"

    text = _text(client.get(response["Location"]))
    assert "<title>New API Token · Firezone</title>" in text
    assert "API Token details" in text
    assert 'placeholder="Name for this token (optional)"' in text
    expected_default = (timezone.now().astimezone(UTC).date() + timedelta(days=365)).isoformat()
    assert f'value="{expected_default}"' in text
    assert "Create API Token" in text

    day = (timezone.now() + timedelta(days=30)).date().isoformat()
    response = client.post(f"{BASE}/{actor.pk}/new_token", {"name": "", "expires_at": day})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    text = _text(response)
    assert "Your API Token:" in text
    assert "Store this in a safe place. It won't be shown again." in html.unescape(
        text.replace("<strong>", "").replace("</strong>", "")
    )
    assert "Back to API Client" in text
    token = Token.objects.get(actor=actor)
    assert token.type == Token.Type.API_CLIENT and token.name is None
    assert token.expires_at is not None and token.expires_at.date().isoformat() == day
    encoded = text.split('<div class="copy-block" id="token"><pre><code>', 1)[1].split("<", 1)[0]
    assert encoded.startswith(".")
    from accounts.auth import Context

    subject = authenticate(encoded, context=Context(type="api_client"))
    assert subject.actor.pk == actor.pk


def test_new_token_validation(client: Client, acme: Acme) -> None:
    api = _api_client(acme.account)
    past = (timezone.now() - timedelta(days=1)).date().isoformat()
    response = client.post(f"{BASE}/{api.pk}/new_token", {"expires_at": past})
    assert response.status_code == 200 and "must be greater than" in _text(response)
    response = client.post(f"{BASE}/{api.pk}/new_token", {"expires_at": ""})
    assert "can't be blank" in _text(response)
    assert not Token.objects.filter(actor=api).exists()


def test_new_token_for_disabled_client_is_refused(client: Client, acme: Acme) -> None:
    api = _api_client(acme.account, disabled_at=timezone.now())
    day = (timezone.now() + timedelta(days=3)).date().isoformat()
    response = client.post(f"{BASE}/{api.pk}/new_token", {"expires_at": day})
    assert response.status_code == 200 and "Actor is disabled" in _text(response)
    assert not Token.objects.filter(actor=api).exists()


# --- detail and events ---------------------------------------------------------------------------


def test_detail(client: Client, acme: Acme) -> None:
    api = _api_client(acme.account, "Terraform")
    token, _ = _token(acme, api, "deploy")
    text = _text(client.get(f"{BASE}/{api.pk}"))
    assert "<title>API Client Terraform · Firezone</title>" in text
    assert "API Client: <strong>Terraform</strong>" in text
    assert "Edit API Client" in text and "Disable API Client" in text
    assert "Confirm disabling the API Client" in text
    assert "Are you sure want to disable this API Client and revoke all its tokens?" in text
    assert "<th>Name</th>" in text and "<th>Created</th>" in text
    assert "API Tokens" in text and "Create Token" in text and "Revoke All" in text
    assert "Confirm revocation of all API Client tokens" in text
    assert f'id="api-client-token-{token.pk}"' in text and "deploy" in text
    assert "Confirm revocation of API Token" in text
    assert "Are you sure you want to revoke this token?" in text
    for column in ("expires at", "created by", "last used", "last used IP"):
        assert f">{column}</th>" in text
    assert "Delete API Client" in text
    assert "Are you sure want to delete this API Client along with all associated tokens?" in text
    assert "by Admin" in text


def test_detail_without_tokens(client: Client, acme: Acme) -> None:
    api = _api_client(acme.account)
    assert "No API tokens to display." in _text(client.get(f"{BASE}/{api.pk}"))


def test_disable_and_enable(client: Client, acme: Acme) -> None:
    api = _api_client(acme.account)
    _token(acme, api)
    path = f"{BASE}/{api.pk}"
    response = client.post(path, {"action": "disable"}, follow=True)
    assert "API Client was disabled." in _text(response)
    api.refresh_from_db()
    assert api.disabled_at is not None
    assert not Token.objects.filter(actor=api).exists()
    text = _text(response)
    assert "Enable API Client" in text and "Are you sure want to enable this API Client?" in text
    assert 'id="create-token"' not in text

    response = client.post(path, {"action": "enable"}, follow=True)
    assert "API Client was enabled." in _text(response)
    api.refresh_from_db()
    assert api.disabled_at is None


def test_revoke_token_and_all(client: Client, acme: Acme) -> None:
    api = _api_client(acme.account)
    first, _ = _token(acme, api, "one")
    _token(acme, api, "two")
    _token(acme, api, "three")
    path = f"{BASE}/{api.pk}"
    response = client.post(path, {"action": "revoke_token", "token_id": str(first.pk)}, follow=True)
    assert "Token was revoked." in _text(response)
    assert not Token.objects.filter(pk=first.pk).exists()
    response = client.post(path, {"action": "revoke_all"}, follow=True)
    assert "2 token(s) were revoked." in _text(response)
    assert not Token.objects.filter(actor=api).exists()


def test_revoke_other_clients_token_is_404(client: Client, acme: Acme) -> None:
    api = _api_client(acme.account)
    other = _api_client(acme.account, "Other")
    token, _ = _token(acme, other)
    path = f"{BASE}/{api.pk}"
    assert client.post(path, {"action": "revoke_token", "token_id": str(token.pk)}).status_code == (
        404
    )
    assert client.post(path, {"action": "revoke_token", "token_id": "bad"}).status_code == 404
    assert Token.objects.filter(pk=token.pk).exists()


def test_delete(client: Client, acme: Acme) -> None:
    api = _api_client(acme.account)
    _token(acme, api)
    response = client.post(f"{BASE}/{api.pk}", {"action": "delete"})
    assert response.status_code == 302 and response["Location"] == BASE
    assert not Actor.objects.filter(pk=api.pk).exists()
    assert not Token.objects.filter(actor_id=api.pk).exists()


def test_edit(client: Client, acme: Acme) -> None:
    api = _api_client(acme.account, "CI")
    path = f"{BASE}/{api.pk}/edit"
    text = _text(client.get(path))
    assert "Edit API Client" in text and 'value="CI"' in text and "Update" in text
    response = client.post(path, {"name": ""})
    assert response.status_code == 200 and "can't be blank" in _text(response)
    response = client.post(path, {"name": "Terraform Cloud"})
    assert response.status_code == 302 and response["Location"] == f"{BASE}/{api.pk}"
    api.refresh_from_db()
    assert api.name == "Terraform Cloud"
