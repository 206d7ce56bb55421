"""Actor pages (portal.md §4.5), with the Django test client: who may see them (access) and the
actor list.

Shared fixtures: accounts/tests/_actors.py.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Actor
from accounts.tests._actors import (  # noqa: F401
    _client_token,
    _service_account,
    _text,
    _user,
    acme_fixture,
    client_fixture,
)
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    MembershipFactory,
    ProviderFactory,
)
from accounts.tests.portal import UA, Acme, inject_session
from gateways.tests.factories import ClientFactory, flow_for

pytestmark = pytest.mark.django_db

# --- access --------------------------------------------------------------------------------------


def _all_urls(acme: Acme, actor: Actor, sa: Actor) -> list[str]:
    return [
        "/acme/actors",
        "/acme/actors/new",
        "/acme/actors/users/new",
        f"/acme/actors/users/{actor.pk}/new_identity",
        "/acme/actors/service_accounts/new",
        f"/acme/actors/service_accounts/{sa.pk}/new_identity",
        f"/acme/actors/{actor.pk}",
        f"/acme/actors/{actor.pk}/edit",
        f"/acme/actors/{actor.pk}/edit_groups",
    ]


def test_regular_user_gets_404_everywhere(acme: Acme) -> None:
    user = _user(acme, "Joe")
    sa = _service_account(acme)
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, user.identities.get())
    for path in _all_urls(acme, user, sa):
        response = c.get(path)
        assert response.status_code == 404, path
        assert "Sorry, we couldn't find this page." in _text(response)


def test_signed_out_is_sent_to_sign_in(acme: Acme) -> None:
    response = Client(HTTP_USER_AGENT=UA).get("/acme/actors")
    assert response.status_code == 302
    assert response["Location"].startswith("/acme?redirect_to=")


def test_other_accounts_actor_is_404(client: Client, acme: Acme) -> None:
    other = AccountFactory()
    foreign = ActorFactory(account=other, name="Foreign")
    foreign_sa = ActorFactory(account=other, service_account=True)
    paths = [
        f"/acme/actors/users/{foreign.pk}/new_identity",
        f"/acme/actors/service_accounts/{foreign_sa.pk}/new_identity",
        f"/acme/actors/{foreign.pk}",
        f"/acme/actors/{foreign.pk}/edit",
        f"/acme/actors/{foreign.pk}/edit_groups",
    ]
    for path in paths:
        assert client.get(path).status_code == 404, path
        assert client.post(path, {"action": "delete"}).status_code == 404, path
    assert Actor.objects.filter(pk=foreign.pk).exists()


@pytest.mark.parametrize("bad", ["nope", "123", str(uuid.uuid4())])
def test_malformed_or_unknown_id_is_404(client: Client, bad: str) -> None:
    for suffix in ("", "/edit", "/edit_groups"):
        assert client.get(f"/acme/actors/{bad}{suffix}").status_code == 404
    assert client.get(f"/acme/actors/users/{bad}/new_identity").status_code == 404
    assert client.get(f"/acme/actors/service_accounts/{bad}/new_identity").status_code == 404


def test_wrong_kind_of_actor_is_404(client: Client, acme: Acme) -> None:
    sa = _service_account(acme)
    api = ActorFactory(account=acme.account, api_client=True)
    assert client.get(f"/acme/actors/users/{sa.pk}/new_identity").status_code == 404
    assert client.get(f"/acme/actors/users/{api.pk}/new_identity").status_code == 404
    assert (
        client.get(f"/acme/actors/service_accounts/{acme.admin.pk}/new_identity").status_code == 404
    )
    assert client.get(f"/acme/actors/{api.pk}/edit").status_code == 404
    # API clients have their page under Settings.
    response = client.get(f"/acme/actors/{api.pk}")
    assert response.status_code == 302
    assert response["Location"] == f"/acme/settings/api_clients/{api.pk}"


# --- list ----------------------------------------------------------------------------------------


def test_list_renders_rows(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    group = GroupFactory(account=acme.account, name="Eng")
    MembershipFactory(group=group, actor=jane)
    ClientFactory(actor=jane, name="jane-laptop")
    sa = _service_account(acme, "Backend")
    api = ActorFactory(account=acme.account, api_client=True, name="Terraform")
    disabled = ActorFactory(account=acme.account, name="Gone", disabled_at=timezone.now())

    response = client.get("/acme/actors")
    assert response.status_code == 200
    text = _text(response)
    assert "<title>Actors · Firezone</title>" in text
    assert "Actors are the people and services that can access your Resources." in text
    assert 'href="/acme/actors/new"' in text and "Add Actor" in text
    assert "https://www.firezone.dev/kb/deploy/users?utm_source=product" in text
    assert f'id="user-{acme.admin.pk}"' in text and "Admin</a> (admin)" in text
    assert f'id="user-{jane.pk}"' in text and "jane@acme.test" in text
    assert f'href="/acme/actors/{jane.pk}#groups" title="Eng">1</a>' in text
    assert "jane-laptop" in text
    assert "Backend</a> (service account)" in text
    assert f'href="/acme/settings/api_clients/{api.pk}">Terraform</a> (api client)' in text
    assert f'id="user-{disabled.pk}"' in text and "Disabled" in text
    assert f'id="user-{sa.pk}"' in text
    assert "Search by Name or Email" in text
    assert "For any Provider" in text
    assert "Never" in text


def test_list_filters(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane", email="jane@corp.test")
    bob = ActorFactory(account=acme.account, name="Bob", disabled_at=timezone.now())
    oidc = ProviderFactory(account=acme.account, oidc=True, name="Vault")
    IdentityFactory(actor=bob, account=acme.account, provider=oidc, provider_identifier="bob-sub")

    text = _text(client.get("/acme/actors", {"actors_filter[name_or_email]": "corp.test"}))
    assert f"user-{jane.pk}" in text and f"user-{bob.pk}" not in text
    text = _text(client.get("/acme/actors", {"actors_filter[name_or_email]": "bob"}))
    assert f"user-{bob.pk}" in text and f"user-{jane.pk}" not in text
    text = _text(client.get("/acme/actors", {"actors_filter[provider_id]": str(oidc.pk)}))
    assert f"user-{bob.pk}" in text and f"user-{jane.pk}" not in text
    text = _text(client.get("/acme/actors", {"actors_filter[status]": "disabled"}))
    assert f"user-{bob.pk}" in text and f"user-{jane.pk}" not in text
    text = _text(client.get("/acme/actors", {"actors_filter[status]": "active"}))
    assert f"user-{jane.pk}" in text and f"user-{bob.pk}" not in text
    text = _text(client.get("/acme/actors", {"actors_filter[name_or_email]": "zzz"}))
    assert "There are no results matching your filters." in text


def test_list_bad_filter_resets(client: Client, acme: Acme) -> None:
    response = client.get("/acme/actors", {"actors_filter[provider_id]": str(uuid.uuid4())})
    assert response.status_code == 302 and response["Location"] == "/acme/actors"
    follow = client.get(response["Location"])
    assert "The page was reset due to invalid value of a pagination filter." in _text(follow)


def test_list_sorts_by_name(client: Client, acme: Acme) -> None:
    _user(acme, "Zed")
    _user(acme, "Amy")
    text = _text(client.get("/acme/actors", {"actors_order_by": "actors:asc:name"}))
    assert text.index(">Admin<") < text.index(">Amy<") < text.index(">Zed<")


def _populate(acme: Acme, n: int, start: int = 0) -> None:
    group = GroupFactory(account=acme.account)
    for i in range(start, start + n):
        actor = _user(acme, f"User{i:03d}")
        MembershipFactory(group=group, actor=actor)
        ClientFactory(actor=actor)


def _count_queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    _populate(acme, 1)
    client.get("/acme/actors")  # warm the session
    few = _count_queries(client, "/acme/actors")
    _populate(acme, 50, start=1)
    many = _count_queries(client, "/acme/actors")
    assert few == many


def test_detail_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    jane = _user(acme, "Jane")
    client.get(f"/acme/actors/{jane.pk}")
    few = _count_queries(client, f"/acme/actors/{jane.pk}")
    for _ in range(12):
        flow_for(ClientFactory(actor=jane))  # a client, a flow and a group membership
        _client_token(jane)
    many = _count_queries(client, f"/acme/actors/{jane.pk}")
    assert few == many
