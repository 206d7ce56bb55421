"""Sites and gateways admin pages (portal.md §4.1, §4.2) with Django's test client.

Presence is real (Redis, a key prefix of this test): `_online` registers gateways the way the
gateway socket does, on both the account and the site topics.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, Token
from accounts.tests.factories import ActorFactory, GroupFactory, IdentityFactory
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from gateways import presence
from gateways.models import Gateway, Site
from gateways.services.sites import site_token_create
from gateways.tests.factories import GatewayFactory, SiteFactory
from resources.tests.factories import ConnectionFactory, PolicyFactory, ResourceFactory

pytestmark = pytest.mark.django_db


def _search(pattern: str, text: str) -> str:
    """The first match of `pattern` (across lines) in the page."""
    match = re.search(pattern, text, re.S)
    assert match is not None, pattern
    return match.group(0)


@pytest.fixture(autouse=True)
def _presence_prefix(settings: Any) -> None:
    settings.PRESENCE_KEY_PREFIX = f"test-presence:{uuid.uuid4().hex}"


@pytest.fixture
def acme() -> Acme:
    return make_acme()


@pytest.fixture
def client(acme: Acme) -> Client:
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, acme.admin_identity)
    return client


def _online(*gateways: Gateway, token_id: str | None = None) -> None:
    async def track() -> None:
        for gateway in gateways:
            await presence.track_many(
                f"conn-{gateway.pk}",
                [
                    (presence.account_gateways_topic(gateway.account_id), str(gateway.pk), {}),
                    (
                        presence.group_gateways_topic(gateway.group_id),
                        str(gateway.pk),
                        {"token_id": token_id},
                    ),
                ],
            )
        await presence.aclose()

    async_to_sync(track)()


def _text(response: Any) -> str:
    return response.content.decode()


def _flash(client: Client, url: str) -> str:
    return _text(client.get(url))


def _internet(account: Account) -> tuple[Site, Any]:
    site = SiteFactory(account=account, internet=True)
    resource = ResourceFactory(account=account, internet=True)
    ConnectionFactory(resource=resource, gateway_group=site)
    return site, resource


# --- sites list -------------------------------------------------------------------------------


def test_sites_list_empty(client: Client) -> None:
    response = client.get("/acme/sites")
    text = _text(response)
    assert response.status_code == 200
    assert "<title>Sites · Firezone</title>" in text
    assert "Add Site" in text and 'href="/acme/sites/new"' in text
    assert (
        "Sites represent a shared network environment that Gateways and Resources exist within."
        in text
    )
    assert "No sites to display." in text
    assert "to start deploying gateways and adding resources." in text
    assert "https://www.firezone.dev/kb/deploy/sites?utm_source=product" in text
    assert 'id="internet-site-banner"' not in text


def test_sites_list_rows_with_peeks(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account, name="HQ")
    resources = [ResourceFactory(account=acme.account, name=f"r{i}") for i in range(7)]
    for resource in resources:
        ConnectionFactory(resource=resource, gateway_group=site)
    up = GatewayFactory(group=site, name="gw-up")
    GatewayFactory(group=site, name="gw-down")
    SiteFactory(account=acme.account, name="Empty")
    SiteFactory(account=acme.account, internet=True)  # not a row
    SiteFactory(name="Other")  # another account
    _online(up)

    text = _text(client.get("/acme/sites"))
    assert f'id="group-{site.pk}"' in text
    row = _search(rf'<tr id="group-{site.pk}">.*?</tr>', text)
    assert f'href="/acme/sites/{site.pk}">HQ</a>' in row
    for resource in resources[:5]:
        assert f"/acme/resources/{resource.pk}?site_id={site.pk}" in row
    assert resources[5].name not in row
    assert f'href="/acme/sites/{site.pk}#resources">and 2 more.</a>' in row
    assert f'href="/acme/gateways/{up.pk}">gw-up</a>' in row
    assert "gw-down" not in row
    empty = re.search(r'<tr id="group-[^"]+">\s*<td><a [^>]*>Empty</a>.*?</tr>', text, re.S)
    assert empty and empty.group(0).count("None") == 2
    assert ">Internet</a>" not in text and "Other" not in text
    assert "Showing 2 of 2" in text


def test_sites_list_internet_banner(client: Client, acme: Acme) -> None:
    site, _resource = _internet(acme.account)
    text = _text(client.get("/acme/sites"))
    banner = _search(r'<section[^>]*id="internet-site-banner".*?</section>', text)
    assert "Manage Internet Site" in banner and f"/acme/sites/{site.pk}" in banner
    assert 'title="Offline"' in banner and "UPGRADE TO UNLOCK" not in banner
    assert (
        "Use the Internet Site to manage secure, private access to the public internet for your "
        "workforce." in banner
    )
    assert f'data-live-topics="account_gateways:{acme.account.pk}"' in banner

    _online(GatewayFactory(group=site))
    banner = _text(client.get("/acme/sites"))
    assert 'title="Online"' in banner

    Account.objects.filter(pk=acme.account.pk).update(
        features={**acme.account.features, "internet_resource": False}
    )
    text = _text(client.get("/acme/sites"))
    banner = _search(r'<section[^>]*id="internet-site-banner".*?</section>', text)
    # Not provisioned (billing off): the badge is text, not a link to a 404.
    assert "UPGRADE TO UNLOCK" in banner and "/acme/settings/billing" not in banner
    assert "Manage Internet Site" not in banner and 'title="Online"' not in banner


def test_sites_list_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    def add_sites(n: int) -> None:
        for _ in range(n):
            site = SiteFactory(account=acme.account)
            ConnectionFactory(resource=ResourceFactory(account=acme.account), gateway_group=site)
            _online(GatewayFactory(group=site))

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/acme/sites")
        assert response.status_code == 200
        return len(queries)

    add_sites(1)
    one = count()
    add_sites(49)
    fifty = count()
    assert fifty == one


# --- new / edit -------------------------------------------------------------------------------


def test_new_site_form_and_create(client: Client, acme: Acme) -> None:
    text = _text(client.get("/acme/sites/new"))
    assert "<title>New Site · Firezone</title>" in text
    assert 'placeholder="Enter a name for this Site"' in text and ">Create<" in text

    response = client.post("/acme/sites/new", {"name": "HQ"})
    site = Site.objects.get(account=acme.account, name="HQ")
    assert response.status_code == 302 and response["Location"] == f"/acme/sites/{site.pk}"
    assert "Site: <code>HQ</code>" in _text(client.get(response["Location"]))


def test_new_site_blank_name_is_generated(client: Client, acme: Acme) -> None:
    response = client.post("/acme/sites/new", {"name": "  "})
    assert response.status_code == 302
    site = Site.objects.get(account=acme.account, managed_by="account")
    assert site.name and response["Location"] == f"/acme/sites/{site.pk}"


def test_new_site_validation(client: Client, acme: Acme) -> None:
    SiteFactory(account=acme.account, name="HQ")
    response = client.post("/acme/sites/new", {"name": "HQ"})
    assert response.status_code == 200 and "has already been taken" in _text(response)
    response = client.post("/acme/sites/new", {"name": "x" * 65})
    assert response.status_code == 200
    assert "should be at most 64 character(s)" in _text(response)
    assert Site.objects.filter(account=acme.account).count() == 1


def test_new_site_limit(client: Client, acme: Acme) -> None:
    Account.objects.filter(pk=acme.account.pk).update(limits={"gateway_groups_count": 1})
    SiteFactory(account=acme.account)
    response = client.post("/acme/sites/new", {"name": "Second"})
    assert response.status_code == 200
    assert (
        "You have reached the maximum number of sites allowed by your subscription plan."
        in _text(response)
    )
    assert not Site.objects.filter(name="Second").exists()


def test_edit_site(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account, name="HQ")
    SiteFactory(account=acme.account, name="Branch")
    text = _text(client.get(f"/acme/sites/{site.pk}/edit"))
    assert "<title>Edit HQ · Firezone</title>" in text
    assert "Edit Site: <code>HQ</code>" in text and 'placeholder="Name of this Site"' in text
    assert 'value="HQ"' in text and ">Save<" in text

    response = client.post(f"/acme/sites/{site.pk}/edit", {"name": "Branch"})
    assert response.status_code == 200 and "has already been taken" in _text(response)
    response = client.post(f"/acme/sites/{site.pk}/edit", {"name": ""})
    assert "can&#x27;t be blank" in _text(response) or "can't be blank" in _text(response)
    response = client.post(f"/acme/sites/{site.pk}/edit", {"name": "y" * 65})
    assert "should be at most 64 character(s)" in _text(response)

    response = client.post(f"/acme/sites/{site.pk}/edit", {"name": "Head Office"})
    assert response["Location"] == f"/acme/sites/{site.pk}"
    site.refresh_from_db()
    assert site.name == "Head Office"


def test_internet_site_cannot_be_edited(client: Client, acme: Acme) -> None:
    site, _ = _internet(acme.account)
    assert client.get(f"/acme/sites/{site.pk}/edit").status_code == 404
    assert client.post(f"/acme/sites/{site.pk}/edit", {"name": "x"}).status_code == 404


# --- site detail ------------------------------------------------------------------------------


def test_site_detail(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account, name="HQ")
    up = GatewayFactory(group=site, name="gw-up", last_seen_version="1.0.0")
    down = GatewayFactory(group=site, name="gw-down")
    group = GroupFactory(account=acme.account, name="Engineering")
    granted = ResourceFactory(account=acme.account, name="GitLab", address="gitlab.test")
    ConnectionFactory(resource=granted, gateway_group=site)
    PolicyFactory(account=acme.account, resource=granted, actor_group=group)
    lonely = ResourceFactory(account=acme.account, name="Wiki")
    ConnectionFactory(resource=lonely, gateway_group=site)
    ResourceFactory(account=acme.account, name="Elsewhere")
    _online(up)

    text = _text(client.get(f"/acme/sites/{site.pk}"))
    assert "<title>Site HQ · Firezone</title>" in text
    assert "Site: <code>HQ</code>" in text and "Edit Site" in text
    assert "by System" in text
    assert "Online Gateways" in text and f'href="/acme/sites/{site.pk}/gateways">see all' in text
    assert f'href="/acme/sites/{site.pk}/new_token"' in text and "Deploy Gateway" in text
    assert "Confirm revocation of all tokens" in text
    assert "Deploy gateways to terminate connections to your site&#x27;s resources." in text
    assert "Deploy at least one more gateway to ensure" in text
    assert f'id="gateway-{up.pk}"' in text and f'id="gateway-{down.pk}"' not in text
    assert "New version available" in text and "Online" in text
    assert f'data-live-topics="group_gateways:{site.pk}"' in text
    # resources
    assert f'href="/acme/resources/new?site_id={site.pk}"' in text
    assert "Resources are the subnets, hosts, and applications" in text
    assert f"/acme/resources/{granted.pk}?site_id={site.pk}" in text
    assert "Engineering" in text and "Elsewhere" not in text
    assert f"/acme/policies/new?resource_id={lonely.pk}&amp;site_id={site.pk}" in text
    assert "Create a Policy" in text
    assert "Danger Zone" in text and "Confirm deletion of Site" in text


def test_site_detail_without_gateways(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account)
    text = _text(client.get(f"/acme/sites/{site.pk}"))
    assert "No gateways to display. Deploy a gateway to connect resources." in text
    assert "No resources to display." in text
    assert "Deploy at least one more gateway" not in text


def test_site_resources_search(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account)
    for name in ("alpha", "beta"):
        ConnectionFactory(
            resource=ResourceFactory(account=acme.account, name=name), gateway_group=site
        )
    text = _text(client.get(f"/acme/sites/{site.pk}?resources_filter[name]=alp"))
    assert ">alpha<" in text and ">beta<" not in text


def test_internet_site_detail(client: Client, acme: Acme) -> None:
    site, resource = _internet(acme.account)
    policy = PolicyFactory(account=acme.account, resource=resource)
    text = _text(client.get(f"/acme/sites/{site.pk}"))
    assert "Site: <code>Internet</code>" in text and "Edit Site" not in text
    assert "Use this Site to manage secure, private access to the public internet" in text
    assert "Gateways deployed to the Internet Site are used to tunnel all traffic" in text
    assert "No gateways to display. Deploy a Gateway to the Internet Site." in text
    assert "Add Policy" in text
    assert f"/acme/policies/new?resource_id={resource.pk}&amp;site_id={site.pk}" in text
    assert f'id="policies-{policy.pk}"' in text and "Active" in text
    assert "Search by Actor Group Name" in text
    assert "Danger Zone" not in text and "Add Resource" not in text

    policy.delete()
    text = _text(client.get(f"/acme/sites/{site.pk}"))
    assert "No policies to display." in text
    assert "to configure access to the internet." in text


def test_internet_site_without_internet_resource_is_404(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account, internet=True)
    assert client.get(f"/acme/sites/{site.pk}").status_code == 404


def test_revoke_all_tokens(client: Client, acme: Acme) -> None:
    from accounts.tests.factories import subject_for

    site = SiteFactory(account=acme.account)
    other = SiteFactory(account=acme.account)
    subject = subject_for(acme.admin)
    for target in (site, site, other):
        site_token_create(subject=subject, site=target)
    response = client.post(f"/acme/sites/{site.pk}", {"action": "revoke_all"})
    assert response["Location"] == f"/acme/sites/{site.pk}"
    assert "2 token(s) were revoked." in _flash(client, response["Location"])
    assert not Token.objects.filter(gateway_group=site).exists()
    assert Token.objects.filter(gateway_group=other).count() == 1


def test_a_live_region_refresh_leaves_the_flash_for_the_page(client: Client, acme: Acme) -> None:
    """The revoke closes the site's gateways, so the open page's live region re-reads itself
    (an htmx GET) while the browser follows the redirect: that request must not use up the
    flash meant for the page (browser scenario 38 lost it that way)."""
    site = SiteFactory(account=acme.account)
    response = client.post(f"/acme/sites/{site.pk}", {"action": "revoke_all"})
    region = client.get(response["Location"], headers={"HX-Request": "true"})
    assert region.status_code == 200
    assert "token(s) were revoked." not in region.content.decode()
    assert "0 token(s) were revoked." in _flash(client, response["Location"])


def test_delete_site(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account)
    GatewayFactory(group=site)
    response = client.post(f"/acme/sites/{site.pk}", {"action": "delete"})
    assert response.status_code == 302 and response["Location"] == "/acme/sites"
    assert not Site.objects.filter(pk=site.pk).exists()
    assert not Gateway.objects.filter(group_id=site.pk).exists()


def test_internet_site_cannot_be_deleted(client: Client, acme: Acme) -> None:
    site, _ = _internet(acme.account)
    assert client.post(f"/acme/sites/{site.pk}", {"action": "delete"}).status_code == 404
    assert Site.objects.filter(pk=site.pk).exists()


def test_unknown_event_is_404(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account)
    assert client.post(f"/acme/sites/{site.pk}", {"action": "nope"}).status_code == 404


# --- deploy -----------------------------------------------------------------------------------


def test_deploy_gateway_page_creates_a_token_per_visit(
    client: Client, acme: Acme, settings: Any
) -> None:
    settings.API_URL_OVERRIDE = ""
    site = SiteFactory(account=acme.account, name="HQ")
    response = client.get(f"/acme/sites/{site.pk}/new_token")
    text = _text(response)
    assert "<title>New Site Gateway · Firezone</title>" in text
    assert "Deploy a new Gateway" in text
    assert "<strong>No ingress firewall rules</strong> are required or recommended." in text
    assert "Select deployment method then follow the instructions below:" in text
    for label in ("systemd", "Docker", "Terraform", "Custom"):
        assert f">{label}</a>" in text
    tokens = Token.objects.filter(gateway_group=site)
    assert tokens.count() == 1
    token = tokens.get()
    assert f'data-live-token="{token.pk}"' in text
    assert f'data-live-topics="group_gateways:{site.pk}"' in text
    assert re.search(r"FIREZONE_ID=&quot;[0-9a-f-]{36}&quot; \\", text)
    assert "FIREZONE_TOKEN=&quot;" in text and "FIREZONE_API_URL" not in text
    assert "gateway-systemd-install.sh" in text
    assert "docker run" in text and "ghcr.io/firezone/gateway:1" in text
    assert "--env FIREZONE_NAME=$(hostname)" in text
    assert "sudo sysctl -w net.ipv4.ip_forward=1" in text
    assert "sudo iptables -t nat -C POSTROUTING -o e+ -j MASQUERADE" in text
    assert "Waiting for connection..." in text and "Connected, click to continue" in text
    assert "Gateway troubleshooting guide" in text
    assert 'id="systemd-instructions"' in text

    # in-place (htmx) refreshes do not mint tokens; visits do
    client.get(f"/acme/sites/{site.pk}/new_token", headers={"HX-Request": "true"})
    assert tokens.count() == 1
    client.get(f"/acme/sites/{site.pk}/new_token")
    assert tokens.count() == 2


def test_deploy_gateway_method_and_api_url(client: Client, acme: Acme, settings: Any) -> None:
    settings.API_URL_OVERRIDE = "wss://api.example.test"
    settings.DOCKER_REGISTRY = "registry.example.test/fz"
    site = SiteFactory(account=acme.account)
    text = _text(client.get(f"/acme/sites/{site.pk}/new_token?method=docker-instructions"))
    assert 'aria-controls="docker-instructions" aria-selected="true"' in text
    assert 'id="systemd-instructions" aria-labelledby="systemd-instructions-tab" hidden' in text
    assert "FIREZONE_API_URL=&quot;wss://api.example.test&quot;" in text
    assert "--env FIREZONE_API_URL=&quot;wss://api.example.test&quot;" in text
    assert "registry.example.test/fz/gateway:1" in text
    # an unknown method falls back to systemd
    text = _text(client.get(f"/acme/sites/{site.pk}/new_token?method=nope"))
    assert 'aria-controls="systemd-instructions" aria-selected="true"' in text


# --- site gateways & gateway detail -----------------------------------------------------------


def test_site_gateways_lists_all(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account, name="HQ")
    up = GatewayFactory(group=site, name="gw-up")
    down = GatewayFactory(group=site, name="gw-down", last_seen_version="9.9.9")
    _online(up)
    text = _text(client.get(f"/acme/sites/{site.pk}/gateways"))
    assert "<title>Site Gateways · Firezone</title>" in text
    assert "Site <code>HQ</code> Gateways" in text
    up_row = _search(rf'<tr id="gateway-{up.pk}">.*?</tr>', text)
    down_row = _search(rf'<tr id="gateway-{down.pk}">.*?</tr>', text)
    assert "Online" in up_row and "New version available" in up_row
    assert "Offline" in down_row and "Up to date" in down_row
    assert "sort-link" in text  # instance is sortable
    assert f'data-live-topics="group_gateways:{site.pk}"' in text

    empty = SiteFactory(account=acme.account)
    text = _text(client.get(f"/acme/sites/{empty.pk}/gateways"))
    assert "No gateways to display. Deploy a Gateway to connect Resources." in text


def test_site_gateways_query_count_does_not_grow(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/acme/sites/{site.pk}/gateways").status_code == 200
            assert client.get(f"/acme/sites/{site.pk}").status_code == 200
        return len(queries)

    _online(GatewayFactory(group=site))
    one = count()
    _online(*[GatewayFactory(group=site) for _ in range(49)])
    assert count() == one


def test_gateway_detail(client: Client, acme: Acme) -> None:
    site = SiteFactory(account=acme.account, name="HQ")
    gateway = GatewayFactory(
        group=site,
        name="gw-1",
        last_seen_remote_ip_location_region="US",
        last_seen_remote_ip_location_city="Austin",
        last_seen_remote_ip_location_lat=30.2,
        last_seen_remote_ip_location_lon=-97.7,
    )
    text = _text(client.get(f"/acme/gateways/{gateway.pk}"))
    assert "<title>Gateway gw-1 · Firezone</title>" in text
    assert "Gateway: <code>gw-1</code>" in text and 'id="gateway"' in text
    assert f'href="/acme/sites/{site.pk}">HQ</a>' in text
    assert f'href="/acme/sites/{site.pk}/gateways">Gateways</a>' in text
    assert "Offline" in text and "Austin, United States" in text
    assert "https://www.google.com/maps/search/?api=1&amp;query=30.2,-97.7" in text
    assert gateway.last_seen_user_agent in text and "Last started" in text
    assert "Confirm deletion of Gateway" in text
    _online(gateway)
    assert "Online" in _text(client.get(f"/acme/gateways/{gateway.pk}"))


def test_delete_gateway(client: Client, acme: Acme) -> None:
    gateway = GatewayFactory(group=SiteFactory(account=acme.account))
    response = client.post(f"/acme/gateways/{gateway.pk}", {"action": "delete"})
    assert response["Location"] == f"/acme/sites/{gateway.group_id}"
    assert "Gateway was deleted." in _flash(client, response["Location"])
    assert not Gateway.objects.filter(pk=gateway.pk).exists()


# --- access -----------------------------------------------------------------------------------


def _urls(site: Site, gateway: Gateway) -> list[str]:
    return [
        f"/acme/sites/{site.pk}",
        f"/acme/sites/{site.pk}/edit",
        f"/acme/sites/{site.pk}/new_token",
        f"/acme/sites/{site.pk}/gateways",
        f"/acme/gateways/{gateway.pk}",
    ]


def test_regular_user_gets_404(acme: Acme) -> None:
    user = ActorFactory(account=acme.account)
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, identity)
    site = SiteFactory(account=acme.account)
    gateway = GatewayFactory(group=site)
    for path in ["/acme/sites", "/acme/sites/new", *_urls(site, gateway)]:
        assert client.get(path).status_code == 404, path
    assert client.post(f"/acme/sites/{site.pk}", {"action": "delete"}).status_code == 404
    assert Site.objects.filter(pk=site.pk).exists()


def test_other_accounts_and_malformed_ids_are_404(client: Client) -> None:
    site = SiteFactory()
    gateway = GatewayFactory(group=site)
    for path in _urls(site, gateway):
        assert client.get(path).status_code == 404, path
    for action in ("delete", "revoke_all"):
        assert client.post(f"/acme/sites/{site.pk}", {"action": action}).status_code == 404
    assert client.post(f"/acme/sites/{site.pk}/edit", {"name": "x"}).status_code == 404
    assert client.post(f"/acme/gateways/{gateway.pk}", {"action": "delete"}).status_code == 404
    assert Site.objects.filter(pk=site.pk, name=site.name).exists()
    assert Gateway.objects.filter(pk=gateway.pk).exists()
    assert not Token.objects.filter(gateway_group=site).exists()
    for path in ("/acme/sites/not-a-uuid", "/acme/sites/123/edit", "/acme/gateways/nope"):
        assert client.get(path).status_code == 404, path
