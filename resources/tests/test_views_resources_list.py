"""Resource pages (portal.md §4.3), with the Django test client: the list, and who may see
the pages.

Shared fixtures: resources/tests/_resource_pages.py.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
)
from accounts.tests.portal import UA, Acme, inject_session
from resources.models import Resource
from resources.tests._resource_pages import (  # noqa: F401
    _features,
    _flash,
    _form,
    _internet,
    _resource,
    acme_fixture,
    client_fixture,
)
from resources.tests.factories import (
    PolicyFactory,
    SiteFactory,
    World,
)

pytestmark = pytest.mark.django_db

# --- list -------------------------------------------------------------------------------------


def test_list_renders_rows_sites_groups_and_internet_section(client: Client, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account, name="HQ")
    resource = _resource(acme, hq, name="GitLab", address="gitlab.company.com")
    for name in ("Eng", "Ops", "QA", "Sales"):
        PolicyFactory(
            account=acme.account,
            resource=resource,
            actor_group=GroupFactory(account=acme.account, name=name),
        )
    lonely = _resource(acme, hq, name="Wiki", address="wiki.company.com")
    _internet(acme)

    response = client.get("/acme/resources")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<title>Resources · Firezone</title>" in html
    assert "Resources define the subnets, hosts, and applications" in html
    assert 'href="/acme/resources/new"' in html and "Add Resource" in html
    assert f'id="resource-{resource.pk}"' in html
    assert "<code>gitlab.company.com</code>" in html
    assert f'href="/acme/sites/{hq.pk}">HQ</a>' in html
    assert "Eng</a>, <a" in html and "Ops" in html and "QA" in html
    assert "and 1 more." in html and "Sales" not in html
    assert f'href="/acme/policies/new?resource_id={lonely.pk}">Create a Policy</a>' in html
    # The Internet resource has its own section, not a row.
    assert ">Internet</a>" not in html
    assert 'id="view-internet-resource"' in html and 'href="/acme/resources/internet"' in html
    assert "special resource that matches all traffic" in html
    # The table is marked stale by resource changes.
    assert 'data-live-topics="changes:resources" data-live-mode="stale"' in html
    assert 'id="resources-reload-btn"' in html


def test_list_without_internet_feature_hides_section(client: Client, acme: Acme) -> None:
    _features(acme, internet_resource=False)
    html = client.get("/acme/resources").content.decode()
    assert 'id="view-internet-resource"' not in html
    assert "No resources to display" in html


def test_list_filter_and_sort(client: Client, acme: Acme) -> None:
    _resource(acme, name="Alpha", address="zeta.example.com")
    _resource(acme, name="Beta", address="alpha.example.com")
    html = client.get("/acme/resources", {"resources_filter[name]": "ZETA"}).content.decode()
    assert "Alpha" in html and "Beta" not in html
    html = client.get("/acme/resources", {"resources_filter[name]": "nope"}).content.decode()
    assert "There are no results matching your filters." in html
    html = client.get(
        "/acme/resources", {"resources_order_by": "resources:asc:address"}
    ).content.decode()
    assert html.index("Beta") < html.index("Alpha")
    response = client.get("/acme/resources", {"resources_order_by": "resources:asc:bogus"})
    assert response.status_code == 302
    assert "The page was reset due to invalid pagination filter." in _flash(response)


def test_list_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/acme/resources").status_code == 200
        return len(ctx.captured_queries)

    site = SiteFactory(account=acme.account)
    group = GroupFactory(account=acme.account)
    first = _resource(acme, site)
    PolicyFactory(account=acme.account, resource=first, actor_group=group)
    one = count()
    for _ in range(49):
        resource = _resource(acme, site, SiteFactory(account=acme.account))
        PolicyFactory(account=acme.account, resource=resource, actor_group=group)
    assert count() == one


# --- access -----------------------------------------------------------------------------------


def _pages(resource: Resource) -> list[str]:
    return [
        "/acme/resources",
        "/acme/resources/new",
        f"/acme/resources/{resource.pk}",
        f"/acme/resources/{resource.pk}/edit",
    ]


def test_regular_user_gets_404(acme: Acme) -> None:
    user = ActorFactory(account=acme.account, name="User")
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, identity)
    for path in _pages(_resource(acme)):
        assert c.get(path).status_code == 404, path


def test_signed_out_is_redirected(acme: Acme) -> None:
    response = Client(HTTP_USER_AGENT=UA).get("/acme/resources")
    assert response.status_code == 302
    assert response["Location"].startswith("/acme?redirect_to=")


def test_other_account_and_malformed_ids_404(client: Client, acme: Acme) -> None:
    other = World(AccountFactory())
    for rid in (other.resource.pk, "not-a-uuid", uuid.uuid4()):
        assert client.get(f"/acme/resources/{rid}").status_code == 404
        assert client.get(f"/acme/resources/{rid}/edit").status_code == 404
        assert client.post(f"/acme/resources/{rid}", {"action": "delete"}).status_code == 404
        assert client.post(f"/acme/resources/{rid}/edit", _form()).status_code == 404
    assert Resource.objects.filter(pk=other.resource.pk).exists()
    # A site of another account (or no site at all) as `site_id`.
    mine = _resource(acme)
    for sid in (str(other.site.pk), "bogus"):
        assert client.get("/acme/resources/new", {"site_id": sid}).status_code == 404
        assert client.get(f"/acme/resources/{mine.pk}", {"site_id": sid}).status_code == 404
        assert client.get(f"/acme/resources/{mine.pk}/edit", {"site_id": sid}).status_code == 404
