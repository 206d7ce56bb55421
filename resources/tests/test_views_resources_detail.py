"""Resource pages (portal.md §4.3), with the Django test client: the detail page (with `internet`
and `?site_id=`), deletion and the edit page.

Shared fixtures: resources/tests/_resource_pages.py.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import (
    GroupFactory,
)
from accounts.tests.portal import Acme
from resources.models import Policy, Resource
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
    GatewayFactory,
    PolicyFactory,
    SiteFactory,
    World,
    make_flow,
)

pytestmark = pytest.mark.django_db

# --- detail -----------------------------------------------------------------------------------


def test_detail_renders_resource(client: Client, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account, name="HQ")
    resource = _resource(
        acme,
        hq,
        name="GitLab",
        address="gitlab.company.com",
        address_description="https://gitlab.company.com/help",
        ip_stack="ipv4_only",
        filters=[
            {"protocol": "tcp", "ports": ["80", "443"]},
            {"protocol": "udp", "ports": []},
            {"protocol": "icmp", "ports": []},
        ],
        created_by="identity",
        created_by_subject={"name": "Admin", "email": "admin@acme.test"},
    )
    html = client.get(f"/acme/resources/{resource.pk}").content.decode()
    assert "<title>Resource GitLab · Firezone</title>" in html
    assert "Resource: <code>GitLab</code>" in html
    assert 'id="resource"' in html
    assert f"<td>{resource.pk}</td>" in html
    assert "<code>gitlab.company.com</code>" in html
    assert 'href="https://gitlab.company.com/help" target="_blank"' in html
    assert "IPv4 only" in html
    assert f'href="/acme/sites/{hq.pk}">HQ</a>' in html
    assert "TCP: 80, 443" in html and "UDP: All ports allowed" in html
    assert "ICMP: Allowed" in html
    assert "by Admin" in html
    assert f'href="/acme/resources/{resource.pk}/edit"' in html
    assert f'href="/acme/policies/new?resource_id={resource.pk}"' in html
    assert "No policies to display." in html and "to grant access to this Resource." in html
    assert "Recent connections opened by Actors to access this Resource." in html
    assert "No activity to display." in html
    assert "Confirm deletion of Resource" in html
    assert "Are you sure want to delete this Resource along with all associated Policies?" in html
    # By persistent id too.
    other = client.get(f"/acme/resources/{resource.persistent_id}")
    assert other.status_code == 200 and "GitLab" in other.content.decode()


def test_detail_plain_resource_texts(client: Client, acme: Acme) -> None:
    resource = _resource(acme, type="cidr", address="10.0.0.0/24", ip_stack=None)
    html = client.get(f"/acme/resources/{resource.pk}").content.decode()
    assert "No linked Sites to display" in html
    assert "All traffic allowed" in html
    assert "IP Stack" not in html


def test_detail_internet(client: Client, acme: Acme) -> None:
    resource = _internet(acme)
    for path in ("/acme/resources/internet", f"/acme/resources/{resource.pk}"):
        html = client.get(path).content.decode()
        assert "0.0.0.0/0, ::/0" in html
        assert "The Internet Resource includes all IPv4 and IPv6 addresses." in html
        assert "Edit Resource" not in html and "Danger Zone" not in html
    assert client.get("/acme/resources/internet/edit").status_code == 404
    response = client.post("/acme/resources/internet", {"action": "delete"})
    assert response.status_code == 302
    assert _flash(response) == ["The Internet Resource cannot be deleted."]
    assert Resource.objects.filter(pk=resource.pk).exists()


def test_detail_without_internet_resource_404(client: Client) -> None:
    assert client.get("/acme/resources/internet").status_code == 404


def test_detail_policies_and_flows_tables(client: Client, acme: Acme) -> None:
    world = World(acme.account)
    disabled = PolicyFactory(
        account=acme.account,
        resource=world.resource,
        actor_group=GroupFactory(account=acme.account, name="Contractors"),
    )
    Policy.objects.filter(pk=disabled.pk).update(disabled_at="2024-01-01T00:00:00Z")
    flow = make_flow(world)
    html = client.get(f"/acme/resources/{world.resource.pk}").content.decode()
    assert f'id="policies-{world.policy.pk}"' in html and "Active" in html
    assert f'id="policies-{disabled.pk}"' in html and "Disabled" in html
    assert 'placeholder="Search by Actor Group Name"' in html
    assert f'id="flows-{flow.pk}"' in html
    assert f"{world.group.name} → {world.resource.name}" in html
    assert f"{world.client.name}</a> owned by" in html and world.actor.name in html
    assert f"{world.site.name}-{world.gateway.name}" in html
    assert "198.51.100.7" in html and "203.0.113.10" in html
    html = client.get(
        f"/acme/resources/{world.resource.pk}", {"policies_filter[status]": "disabled"}
    ).content.decode()
    assert f'id="policies-{disabled.pk}"' in html
    assert f'id="policies-{world.policy.pk}"' not in html
    html = client.get(
        f"/acme/resources/{world.resource.pk}", {"policies_filter[group_name]": "contract"}
    ).content.decode()
    assert f'id="policies-{world.policy.pk}"' not in html


def test_detail_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    world = World(acme.account)
    make_flow(world)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/acme/resources/{world.resource.pk}").status_code == 200
        return len(ctx.captured_queries)

    one = count()
    for _ in range(20):
        PolicyFactory(account=acme.account, resource=world.resource)
        gateway = GatewayFactory(group=SiteFactory(account=acme.account), account=acme.account)
        make_flow(world, gateway=gateway)
    assert count() == one


def test_detail_site_id_links(client: Client, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account)
    resource = _resource(acme, hq)
    html = client.get(f"/acme/resources/{resource.pk}", {"site_id": str(hq.pk)}).content.decode()
    assert f'href="/acme/resources/{resource.pk}/edit?site_id={hq.pk}"' in html
    assert f'href="/acme/policies/new?resource_id={resource.pk}&amp;site_id={hq.pk}"' in html


def test_delete(client: Client, acme: Acme) -> None:
    world = World(acme.account)
    response = client.post(f"/acme/resources/{world.resource.pk}", {"action": "delete"})
    assert response.status_code == 302 and response["Location"] == "/acme/resources"
    assert _flash(response) == ["Resource was deleted."]
    assert not Resource.objects.filter(pk=world.resource.pk).exists()
    assert not Policy.objects.filter(pk=world.policy.pk).exists()


def test_delete_from_site_returns_to_site(client: Client, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account)
    resource = _resource(acme, hq)
    response = client.post(f"/acme/resources/{resource.pk}?site_id={hq.pk}", {"action": "delete"})
    assert response["Location"] == f"/acme/sites/{hq.pk}"


# --- edit -------------------------------------------------------------------------------------


def test_edit_prefills(client: Client, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account, name="HQ")
    resource = _resource(
        acme,
        hq,
        name="GitLab",
        address="gitlab.mongodb.net",
        filters=[{"protocol": "tcp", "ports": ["80", "100 - 200"]}],
    )
    html = client.get(f"/acme/resources/{resource.pk}/edit").content.decode()
    assert "<title>Edit GitLab · Firezone</title>" in html
    assert "Edit Resource" in html
    assert f'<a href="/acme/resources/{resource.pk}">GitLab</a>' in html
    assert 'value="gitlab.mongodb.net"' in html and 'value="GitLab"' in html
    assert re.search(r'id="resource-type--dns"[^>]*checked>', html)
    assert not re.search(r'id="resource-type--ip"[^>]*checked>', html)
    assert 'value="80, 100 - 200"' in html
    assert f'value="{hq.pk}" checked' in html
    assert 'data-recommended-for="ipv4_only">' in html  # the badge is shown
    assert 'data-busy-text="Updating Resource..."' in html
    assert "data-mirror-name" not in html


def test_edit_type_change_revalidates_address(client: Client, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account)
    resource = _resource(acme, hq, name="GitLab", address="gitlab.company.com")
    data = _form(type="ip", address="gitlab.company.com", name="GitLab", connections=str(hq.pk))
    response = client.post(f"/acme/resources/{resource.pk}/edit", data)
    assert response.status_code == 200
    assert "is not a valid IP address" in response.content.decode()
    data["resource[address]"] = "10.3.2.1"
    response = client.post(f"/acme/resources/{resource.pk}/edit", data)
    assert response.status_code == 302 and response["Location"] == "/acme/resources"
    assert _flash(response) == ["Resource GitLab updated successfully."]
    resource.refresh_from_db()
    assert (resource.type, resource.address, resource.ip_stack) == ("ip", "10.3.2.1", None)


def test_edit_changes_sites_and_filters(client: Client, acme: Acme) -> None:
    hq, dc = SiteFactory(account=acme.account), SiteFactory(account=acme.account)
    resource = _resource(acme, hq, filters=[{"protocol": "icmp", "ports": []}])
    data = _form(udp="true", udp_ports="53", connections=str(dc.pk))
    assert client.post(f"/acme/resources/{resource.pk}/edit", data).status_code == 302
    resource.refresh_from_db()
    assert resource.filters == [{"protocol": "udp", "ports": ["53"]}]
    assert list(resource.connections.values_list("gateway_group_id", flat=True)) == [dc.pk]
    # Sites can't all be removed.
    response = client.post(f"/acme/resources/{resource.pk}/edit", _form(connections=None))
    assert response.status_code == 200 and "can&#x27;t be blank" in response.content.decode()


def test_edit_without_traffic_filters_keeps_filters(client: Client, acme: Acme) -> None:
    _features(acme, traffic_filters=False)
    hq = SiteFactory(account=acme.account)
    resource = _resource(acme, hq, filters=[{"protocol": "icmp", "ports": []}])
    data = _form(tcp="true", tcp_ports="22", connections=str(hq.pk))
    assert client.post(f"/acme/resources/{resource.pk}/edit", data).status_code == 302
    resource.refresh_from_db()
    assert resource.filters == [{"protocol": "icmp", "ports": []}]


def test_edit_from_site_keeps_connections(client: Client, acme: Acme) -> None:
    hq, dc = SiteFactory(account=acme.account), SiteFactory(account=acme.account)
    resource = _resource(acme, hq, dc, name="Old")
    html = client.get(
        f"/acme/resources/{resource.pk}/edit", {"site_id": str(hq.pk)}
    ).content.decode()
    assert 'id="resource-sites"' not in html
    response = client.post(f"/acme/resources/{resource.pk}/edit?site_id={hq.pk}", _form(name="New"))
    assert response["Location"] == f"/acme/sites/{hq.pk}"
    assert _flash(response) == ["Resource New updated successfully."]
    assert set(resource.connections.values_list("gateway_group_id", flat=True)) == {hq.pk, dc.pk}


def test_validate_only_requests_write_nothing(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account)
    # htmx requests fired by one input (sign-up does the same).
    headers = {"HX-Request": "true", "HX-Trigger-Name": "resource[address]"}
    response = client.post(
        "/acme/resources/new", _form(address="10.0.0.1", connections=None), headers=headers
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "IP addresses are not allowed, use an IP Resource instead" in html
    assert 'id="resource-errors-connections" data-validation-error-for="connections">' in html
    assert "can&#x27;t be blank" in html
    response = client.post("/acme/resources/new", _form(connections=str(site.pk)), headers=headers)
    assert response.status_code == 200 and 'class="field-error"' not in response.content.decode()
    assert not Resource.objects.filter(account=acme.account).exists()
    resource = _resource(acme, site, name="Keep")
    response = client.post(
        f"/acme/resources/{resource.pk}/edit",
        _form(type="ip", name="Changed", connections=str(site.pk)),
        headers=headers,
    )
    assert "is not a valid IP address" in response.content.decode()
    resource.refresh_from_db()
    assert (resource.name, resource.type) == ("Keep", "dns")


def test_new_bound_to_the_internet_site_shows_the_error(client: Client, acme: Acme) -> None:
    internet_site = SiteFactory(account=acme.account, internet=True)
    response = client.post(f"/acme/resources/new?site_id={internet_site.pk}", _form())
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-validation-error-for="resource[base]">type must be' in html
    assert not Resource.objects.filter(account=acme.account).exists()
