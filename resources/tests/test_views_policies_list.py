"""Policy pages (portal.md §4.4), with the Django test client: the list, and who may see the pages.

Shared fixtures: resources/tests/_policy_pages.py.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    ProviderFactory,
    synced_group,
)
from accounts.tests.portal import UA, Acme, inject_session
from resources.models import Policy
from resources.tests._policy_pages import _post_data, _text, acme_fixture, client_fixture  # noqa: F401
from resources.tests.factories import (
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
)

pytestmark = pytest.mark.django_db

# --- list ----------------------------------------------------------------------------------------


def test_list_renders_rows(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Engineering")
    resource = ResourceFactory(account=acme.account, name="GitLab")
    active = PolicyFactory(account=acme.account, actor_group=group, resource=resource)
    disabled = PolicyFactory(account=acme.account, disabled_at=timezone.now())
    response = client.get("/acme/policies")
    html = _text(response)
    assert response.status_code == 200
    assert "<title>Policies · Firezone</title>" in html
    assert "Policies grant access to Resources." in html
    assert f'id="policies-{active.pk}"' in html
    assert f'id="policies-{disabled.pk}"' in html
    assert "Engineering" in html and "GitLab" in html
    assert "Active" in html and "Disabled" in html
    assert "Search by Group Name or Resource Name" in html
    assert 'data-live-topics="changes:policies"' in html and 'data-live-mode="stale"' in html
    assert 'id="policies-reload-btn"' in html
    assert f'href="/acme/policies/{active.pk}"' in html
    assert f'href="/acme/groups/{group.pk}"' in html
    assert "Manually managed in Firezone" in html


def test_list_empty(client: Client) -> None:
    html = _text(client.get("/acme/policies"))
    assert "No policies to display." in html
    assert "to grant access to Resources." in html
    assert 'href="/acme/policies/new"' in html


def test_list_filters(client: Client, acme: Acme) -> None:
    a = PolicyFactory(account=acme.account, actor_group__name="Ops", resource__name="DB")
    b = PolicyFactory(
        account=acme.account,
        actor_group__name="Sales",
        resource__name="CRM",
        disabled_at=timezone.now(),
    )
    html = _text(client.get("/acme/policies", {"policies_filter[group_or_resource_name]": "crm"}))
    assert f"policies-{b.pk}" in html and f"policies-{a.pk}" not in html
    html = _text(client.get("/acme/policies", {"policies_filter[status]": "active"}))
    assert f"policies-{a.pk}" in html and f"policies-{b.pk}" not in html
    html = _text(client.get("/acme/policies", {"policies_filter[status]": "disabled"}))
    assert f"policies-{b.pk}" in html and f"policies-{a.pk}" not in html
    html = _text(client.get("/acme/policies", {"policies_filter[status]": "nope"}, follow=True))
    assert "The page was reset due to invalid value of a pagination filter." in html


def _count_queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    provider = ProviderFactory(account=acme.account, oidc=True)
    PolicyFactory(account=acme.account, actor_group=synced_group(acme.account, provider=provider))
    one = _count_queries(client, "/acme/policies")
    for _ in range(49):
        PolicyFactory(
            account=acme.account, actor_group=synced_group(acme.account, provider=provider)
        )
    assert _count_queries(client, "/acme/policies") == one


# --- access --------------------------------------------------------------------------------------


def _all_urls(policy: Policy) -> list[str]:
    return [
        "/acme/policies",
        "/acme/policies/new",
        f"/acme/policies/{policy.pk}",
        f"/acme/policies/{policy.pk}/edit",
    ]


def test_regular_user_gets_404(acme: Acme) -> None:
    user = ActorFactory(account=acme.account, name="User")
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, identity)
    policy = PolicyFactory(account=acme.account)
    for path in _all_urls(policy):
        assert c.get(path).status_code == 404, path
    assert c.post(f"/acme/policies/{policy.pk}", {"action": "delete"}).status_code == 404
    assert Policy.objects.filter(pk=policy.pk).exists()


def test_signed_out_redirects_to_sign_in(acme: Acme) -> None:
    response = Client(HTTP_USER_AGENT=UA).get("/acme/policies")
    assert response.status_code == 302
    assert response["Location"].startswith("/acme?redirect_to=")


def test_other_accounts_and_bad_ids_404(client: Client, acme: Acme) -> None:
    other = PolicyFactory(account=AccountFactory())
    for path in [
        f"/acme/policies/{other.pk}",
        f"/acme/policies/{other.pk}/edit",
        "/acme/policies/not-a-uuid",
        "/acme/policies/not-a-uuid/edit",
        f"/acme/policies/{uuid.uuid4()}",
        f"/acme/policies/new?resource_id={other.resource_id}",
        f"/acme/policies/new?actor_group_id={other.actor_group_id}",
        f"/acme/policies/new?site_id={SiteFactory(account=other.account).pk}",
        "/acme/policies/new?resource_id=bad",
    ]:
        assert client.get(path).status_code == 404, path
    for action in ("disable", "enable", "delete"):
        response = client.post(f"/acme/policies/{other.pk}", {"action": action})
        assert response.status_code == 404
    response = client.post(f"/acme/policies/{other.pk}/edit", {})
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.disabled_at is None
    # Another account's group or resource in a submitted form is not found either.
    mine = GroupFactory(account=acme.account)
    response = client.post("/acme/policies/new", _post_data(mine, other.resource))
    assert response.status_code == 404
    assert not Policy.objects.filter(account=acme.account).exists()
