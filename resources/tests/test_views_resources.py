"""Resource pages (portal.md §4.3): list, new, detail (with `internet` and `?site_id=`), edit."""

from __future__ import annotations

import re
import uuid
from typing import Any

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
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from resources.models import Policy, Resource, ResourceConnection
from resources.services.resources import resource_create_internet
from resources.tests.factories import (
    ConnectionFactory,
    GatewayFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
    World,
    make_flow,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme() -> Acme:
    return make_acme()


@pytest.fixture
def client(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _features(acme: Acme, **flags: bool) -> None:
    acme.account.features = {**acme.account.features, **flags}
    acme.account.save()


def _resource(acme: Acme, *sites: Any, **kwargs: Any) -> Resource:
    resource = ResourceFactory(account=acme.account, **kwargs)
    for site in sites:
        ConnectionFactory(resource=resource, gateway_group=site, account=acme.account)
    return resource


def _internet(acme: Acme) -> Resource:
    site = SiteFactory(account=acme.account, internet=True)
    return resource_create_internet(account=acme.account, site=site)


def _form(**fields: Any) -> dict[str, Any]:
    data = {
        "resource[type]": "dns",
        "resource[address]": "gitlab.company.com",
        "resource[address_description]": "",
        "resource[name]": "gitlab.company.com",
        "resource[ip_stack]": "dual",
    }
    for key, value in fields.items():
        name = {
            "tcp": "resource[filters][tcp][enabled]",
            "tcp_ports": "resource[filters][tcp][ports]",
            "udp": "resource[filters][udp][enabled]",
            "udp_ports": "resource[filters][udp][ports]",
            "icmp": "resource[filters][icmp][enabled]",
            "connections": "resource[connections][]",
        }.get(key, f"resource[{key}]")
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def _flash(response: Any) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


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
    for sid in (other.site.pk, "bogus"):
        assert client.get("/acme/resources/new", {"site_id": sid}).status_code == 404
        assert client.get(f"/acme/resources/{mine.pk}", {"site_id": sid}).status_code == 404
        assert client.get(f"/acme/resources/{mine.pk}/edit", {"site_id": sid}).status_code == 404


# --- new --------------------------------------------------------------------------------------


def test_new_page_single_site_select(client: Client, acme: Acme) -> None:
    _features(acme, multi_site_resources=False)
    SiteFactory(account=acme.account, name="HQ")
    SiteFactory(account=acme.account, internet=True)
    html = client.get("/acme/resources/new").content.decode()
    assert "<title>New Resource · Firezone</title>" in html
    assert ">Add Resource</li>" in html
    for text in (
        'id="resource-type--dns"',
        'id="resource-type--ip"',
        'id="resource-type--cidr"',
        "Manage access to an application or service by DNS address.",
        "Manage access to a specific host by IP address.",
        "Manage access to a network, VPC or subnet by CIDR address.",
        'placeholder="First select a type above"',
        "Wildcard matching is supported:",
        "IPv4 and IPv6 addresses are supported.",
        "IPv4 and IPv6 CIDR ranges are supported.",
        'placeholder="Enter a description or URL"',
        "Optional description or URL to show in Clients to help users access this Resource.",
        'placeholder="Name this resource"',
        "Determines what record types are generated by the stub resolver.",
        "Dual-stack: A and AAAA records",
        "IPv4: A records only",
        "IPv6: AAAA records only",
        "Recommended for this Resource",
        "Restrict access to the specified protocols and ports.",
        'placeholder="E.g. 80, 443, 8080-8090"',
        'placeholder="E.g. 53, 60000-61000"',
        "ICMP echo",
        "List of comma-separated port range(s), Matches all ports if empty.",
        '<option value="">Select a Site</option>',
        ">HQ</option>",
        'data-busy-text="Creating Resource..."',
    ):
        assert text in html, text
    assert ">Internet</option>" not in html
    assert "UPGRADE TO UNLOCK" not in html
    assert 'type="checkbox" id="resource_connections_' not in html


def test_new_page_multi_site_and_locked_filters(client: Client, acme: Acme) -> None:
    _features(acme, traffic_filters=False)
    hq = SiteFactory(account=acme.account, name="HQ")
    html = client.get("/acme/resources/new").content.decode()
    assert "When multiple sites are selected, the client will automatically connect" in html
    assert f'id="resource_connections_{hq.pk}"' in html
    assert f'href="/acme/sites/{hq.pk}" target="_blank"' in html
    assert 'data-validation-error-for="connections"' in html
    assert 'id="resource-filters" disabled' in html
    assert "UPGRADE TO UNLOCK" in html


def test_new_page_with_site_id_hides_sites(client: Client, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account, name="HQ")
    html = client.get("/acme/resources/new", {"site_id": hq.pk}).content.decode()
    assert 'id="resource-sites"' not in html


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"type": "", "name": ""}, "resource[type]", "can&#x27;t be blank"),
        ({"name": ""}, "resource[name]", "can&#x27;t be blank"),
        ({"name": "x" * 256}, "resource[name]", "should be at most 255 character(s)"),
        (
            {"address": "10.0.0.1"},
            "resource[address]",
            "IP addresses are not allowed, use an IP Resource instead",
        ),
        ({"address": "foo.localhost"}, "resource[address]", "localhost cannot be used as a TLD."),
        (
            {"type": "ip", "address": "127.0.0.1"},
            "resource[address]",
            "cannot contain loopback addresses",
        ),
        ({"type": "ip", "address": "gitlab.com"}, "resource[address]", "is not a valid IP address"),
        (
            {"type": "ip", "address": "100.64.0.1"},
            "resource[address]",
            "cannot be in the CIDR 100.64.0.0/10",
        ),
        (
            {"type": "cidr", "address": "0.0.0.0/0"},
            "resource[address]",
            "the Internet Resource is already created in your account. Define a Policy for it",
        ),
        ({"type": "cidr", "address": "10.0.0.1"}, "resource[address]", "CIDR netmask is invalid"),
        (
            {"tcp": "true", "tcp_ports": "8080-90"},
            "resource[filters][tcp][ports]",
            "lower value cannot be higher than upper value",
        ),
        ({"udp": "true", "udp_ports": "abc"}, "resource[filters][udp][ports]", "bad format"),
        ({"connections": None}, "connections", "can&#x27;t be blank"),
    ],
)
def test_new_validation(
    client: Client, acme: Acme, fields: dict[str, Any], field: str, message: str
) -> None:
    site = SiteFactory(account=acme.account)
    data = _form(**{"connections": str(site.pk), **fields})
    response = client.post("/acme/resources/new", data)
    assert response.status_code == 200
    html = response.content.decode()
    marker = f'data-validation-error-for="{field}"'
    assert marker in html
    assert message in html[html.index(marker) :][:400]
    assert not Resource.objects.filter(account=acme.account).exists()


def test_new_cidr_internet_message_without_feature(client: Client, acme: Acme) -> None:
    _features(acme, internet_resource=False)
    site = SiteFactory(account=acme.account)
    data = _form(type="cidr", address="::/0", connections=str(site.pk))
    html = client.post("/acme/resources/new", data).content.decode()
    assert "routing all traffic through Firezone is available on paid plans" in html


def test_new_keeps_values_after_errors(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account)
    data = _form(name="", tcp="true", tcp_ports="80", connections=str(site.pk))
    html = client.post("/acme/resources/new", data).content.decode()
    assert 'value="gitlab.company.com"' in html
    assert re.search(r'id="resource-type--dns"[^>]*checked>', html)
    assert 'value="80"' in html
    assert f'value="{site.pk}" checked' in html


def test_new_creates_and_redirects_to_policy_wizard(client: Client, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account, name="HQ")
    other = SiteFactory(account=acme.account, name="DC")
    data = _form(tcp="true", tcp_ports="80, 443", icmp="true", address_description="https://x.y")
    data["resource[connections][]"] = [str(hq.pk), str(other.pk)]
    response = client.post("/acme/resources/new", data)
    resource = Resource.objects.get(account=acme.account)
    assert response.status_code == 302
    assert response["Location"] == f"/acme/policies/new?resource_id={resource.pk}"
    assert _flash(response) == ["Resource gitlab.company.com created successfully."]
    assert resource.filters == [
        {"protocol": "tcp", "ports": ["80", "443"]},
        {"protocol": "icmp", "ports": []},
    ]
    assert resource.ip_stack == "dual" and resource.address_description == "https://x.y"
    sites = set(ResourceConnection.objects.values_list("gateway_group_id", flat=True))
    assert sites == {hq.pk, other.pk}


def test_new_ip_resource_has_no_ip_stack(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account)
    data = _form(type="ip", address="10.3.2.1", name="db", connections=str(site.pk))
    assert client.post("/acme/resources/new", data).status_code == 302
    resource = Resource.objects.get(account=acme.account)
    assert resource.type == "ip" and resource.ip_stack is None


def test_new_single_site_and_discarded_filters(client: Client, acme: Acme) -> None:
    _features(acme, multi_site_resources=False, traffic_filters=False)
    first, second = SiteFactory(account=acme.account), SiteFactory(account=acme.account)
    data = _form(tcp="true", tcp_ports="80")
    data["resource[connections][]"] = [str(first.pk), str(second.pk)]
    assert client.post("/acme/resources/new", data).status_code == 302
    resource = Resource.objects.get(account=acme.account)
    assert resource.filters == []
    assert list(resource.connections.values_list("gateway_group_id", flat=True)) == [first.pk]


def test_new_with_site_id_binds_the_site(client: Client, acme: Acme) -> None:
    hq = SiteFactory(account=acme.account, name="HQ")
    response = client.post(f"/acme/resources/new?site_id={hq.pk}", _form())
    resource = Resource.objects.get(account=acme.account)
    assert response["Location"] == (f"/acme/policies/new?resource_id={resource.pk}&site_id={hq.pk}")
    assert list(resource.connections.values_list("gateway_group_id", flat=True)) == [hq.pk]


def test_new_refuses_the_internet_site(client: Client, acme: Acme) -> None:
    internet_site = SiteFactory(account=acme.account, internet=True)
    response = client.post("/acme/resources/new", _form(connections=str(internet_site.pk)))
    assert response.status_code == 200
    assert "type must be &#x27;internet&#x27; for the Internet site" in response.content.decode()


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
    html = client.get(f"/acme/resources/{resource.pk}", {"site_id": hq.pk}).content.decode()
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
    html = client.get(f"/acme/resources/{resource.pk}/edit", {"site_id": hq.pk}).content.decode()
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
