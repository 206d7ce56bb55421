"""Policy pages (portal.md §4.4): list, new/edit with the conditions editor, detail and its
events, with the Django test client."""

from __future__ import annotations

import uuid
from typing import Any

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
    everyone_group,
    synced_group,
)
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from resources import conditions as conds
from resources.models import Policy
from resources.policy_forms import COUNTRY_NAMES, PolicyForm, describe_conditions
from resources.tests.factories import (
    ConnectionFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
    World,
    make_flow,
)

pytestmark = pytest.mark.django_db

DUPLICATE = "Policy for the selected Group and Resource already exists"


@pytest.fixture
def acme() -> Acme:
    return make_acme()


@pytest.fixture
def client(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _text(response: Any) -> str:
    return response.content.decode()


def _post_data(group: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "policy[actor_group_id]": str(group.pk) if group else "",
        "policy[resource_id]": str(resource.pk) if resource else "",
        "policy[description]": "",
    }
    data.update(extra)
    return data


LOCATION = "policy[conditions][remote_ip_location_region]"
IP = "policy[conditions][remote_ip]"
PROVIDER = "policy[conditions][provider_id]"
VERIFIED = "policy[conditions][client_verified]"
TIME = "policy[conditions][current_utc_datetime]"


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


# --- new -----------------------------------------------------------------------------------------


def test_new_renders_pickers_and_conditions(client: Client, acme: Acme) -> None:
    everyone_group(acme.account)
    GroupFactory(account=acme.account, name="Engineering")
    synced_group(acme.account, name="Okta Admins", provider=ProviderFactory(
        account=acme.account, oidc=True, name="Okta"))  # fmt: skip
    site = SiteFactory(account=acme.account, name="HQ")
    connected = ResourceFactory(account=acme.account, name="GitLab")
    ConnectionFactory(resource=connected, gateway_group=site, account=acme.account)
    ResourceFactory(
        account=acme.account, name="Lonely", type="ip", address="10.0.0.1", ip_stack=None
    )
    ResourceFactory(account=acme.account, internet=True)
    response = client.get("/acme/policies/new")
    html = _text(response)
    assert response.status_code == 200
    assert "<title>New Policy · Firezone</title>" in html
    assert "Add Policy" in html and "Details" in html
    assert 'optgroup label="Managed by Firezone"' in html
    assert 'optgroup label="Manually managed"' in html
    assert 'optgroup label="Synced from Okta"' in html
    assert html.index("Managed by Firezone") < html.index("Manually managed")
    assert html.index("Manually managed") < html.index("Synced from Okta")
    assert "GitLab (HQ)" in html
    assert "Lonely (not connected to any Site)" in html
    assert 'optgroup label="DNS"' in html and 'optgroup label="IP"' in html
    assert ">Internet</option>" in html
    assert 'id="search_query-policy_actor_group_id"' in html
    assert 'id="search_query-policy_resource_id"' in html
    assert "Enter an optional reason for creating this policy here." in html
    # Conditions wait for a resource.
    assert 'id="policy-conditions" hidden' in html
    for text in (
        "All conditions specified below must be met for this policy to be applied.",
        "Client location",
        "Allow access when the location of the Client meets the criteria specified below.",
        "IP address",
        "E.g. 189.172.0.0/24 or 10.10.10.1",
        "Identity provider",
        "Select Provider",
        "Client verification",
        "Require client verification",
        "Current time",
        "24hr format and multiple time ranges per day are supported.",
        "E.g. 9:00-12:00, 13:00-17:00",
        ">United States</option>",
        "Select Country",
        "Create Policy",
        "Creating Policy...",
    ):
        assert text in html, text
    assert "UPGRADE TO UNLOCK" not in html


def test_new_pickers_search_and_limits(client: Client, acme: Acme) -> None:
    for n in range(30):
        GroupFactory(account=acme.account, name=f"Team {n:02}")
    html = _text(client.get("/acme/policies/new"))
    assert "5 more options available. Use the search to refine the list." in html
    html = _text(client.get("/acme/policies/new", {"search_query-policy_actor_group_id": "m 29"}))
    assert "Team 29" in html and "Team 01" not in html and "more options" not in html
    html = _text(client.get("/acme/policies/new", {"search_query-policy_actor_group_id": "zzz"}))
    assert "No groups found. Try a different search query or create a new one" in html
    html = _text(client.get("/acme/policies/new", {"search_query-policy_resource_id": "zzz"}))
    assert "No Resources found. Try a different search query or create a new one" in html


def test_new_empty_pickers(client: Client) -> None:
    html = _text(client.get("/acme/policies/new"))
    assert "You have no groups to create policies for. You can create a group" in html
    assert "You have no resources to create policies for. You can create a resource" in html
    assert 'href="/acme/groups/new"' in html and 'href="/acme/resources/new"' in html


def test_new_locked_resource_shows_conditions(client: Client, acme: Acme) -> None:
    resource = ResourceFactory(account=acme.account, name="GitLab")
    html = _text(client.get(f"/acme/policies/new?resource_id={resource.pk}"))
    assert '<select id="policy_resource_id" disabled' in html
    assert f'name="policy[resource_id]" value="{resource.pk}"' in html
    assert 'id="policy-conditions" hidden' not in html
    assert 'id="policy_conditions_current_utc_datetime" hidden' not in html


def test_new_internet_resource_hides_time_condition(client: Client, acme: Acme) -> None:
    internet = ResourceFactory(account=acme.account, internet=True)
    html = _text(client.get(f"/acme/policies/new?resource_id={internet.pk}"))
    assert "Client location" in html and "Client verification" in html
    assert 'id="policy_conditions_current_utc_datetime" hidden' in html
    assert 'id="policy_conditions_current_utc_datetime_condition" disabled' in html


def test_new_internet_option_locked_without_feature(client: Client, acme: Acme) -> None:
    acme.account.features = {**acme.account.features, "internet_resource": False}
    acme.account.save()
    ResourceFactory(account=acme.account, internet=True)
    html = _text(client.get("/acme/policies/new"))
    assert "Internet - upgrade to unlock" in html
    assert 'data-type="internet" disabled' in html


def test_new_locked_group(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account, name="Engineering")
    html = _text(client.get(f"/acme/policies/new?actor_group_id={group.pk}"))
    assert '<select id="policy_actor_group_id" disabled' in html
    assert f'name="policy[actor_group_id]" value="{group.pk}"' in html


def test_create_requires_group_and_resource(client: Client) -> None:
    response = client.post("/acme/policies/new", _post_data(None, None))
    html = _text(response)
    assert response.status_code == 200
    assert html.count("can&#x27;t be blank") == 2
    assert 'data-validation-error-for="policy[actor_group_id]_name"' in html
    assert 'data-validation-error-for="policy[resource_id]_name"' in html


def test_create_success_with_conditions(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account)
    resource = ResourceFactory(account=acme.account)
    data = _post_data(
        group,
        resource,
        **{
            "policy[description]": "Because",
            f"{LOCATION}[property]": "remote_ip_location_region",
            f"{LOCATION}[operator]": "is_in",
            f"{LOCATION}[values][]": ["US", ""],
            f"{IP}[operator]": "is_not_in_cidr",
            f"{IP}[values][]": ["", ""],
            f"{PROVIDER}[operator]": "is_in",
            f"{PROVIDER}[values][]": [str(acme.email_provider.pk)],
            f"{VERIFIED}[operator]": "is",
            f"{VERIFIED}[values][]": ["true"],
            f"{TIME}[timezone]": "Europe/Berlin",
            f"{TIME}[values][M]": "9:00-17:00",
            f"{TIME}[values][F]": "",
        },
    )
    response = client.post("/acme/policies/new", data)
    assert response.status_code == 302
    assert response["Location"] == "/acme/policies"
    policy = Policy.objects.get(account=acme.account)
    assert policy.description == "Because"
    assert policy.conditions == [
        {"property": "remote_ip_location_region", "operator": "is_in", "values": ["US"]},
        {"property": "provider_id", "operator": "is_in", "values": [str(acme.email_provider.pk)]},
        {"property": "client_verified", "operator": "is", "values": ["true"]},
        {
            "property": "current_utc_datetime",
            "operator": "is_in_day_of_week_time_ranges",
            "values": ["M/9:00-17:00/Europe/Berlin"],
        },
    ]
    html = _text(client.get("/acme/policies"))
    assert "Policy created successfully." in html


def test_create_redirects_for_presets(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account)
    site = SiteFactory(account=acme.account)
    r1, r2, r3 = (ResourceFactory(account=acme.account) for _ in range(3))
    response = client.post(f"/acme/policies/new?resource_id={r1.pk}", _post_data(group, None))
    assert response["Location"] == f"/acme/resources/{r1.pk}"
    response = client.post(f"/acme/policies/new?actor_group_id={group.pk}", _post_data(None, r2))
    assert response["Location"] == f"/acme/groups/{group.pk}"
    response = client.post(
        f"/acme/policies/new?resource_id={r3.pk}&site_id={site.pk}", _post_data(group, None)
    )
    assert response["Location"] == f"/acme/sites/{site.pk}#resources"
    assert Policy.objects.filter(account=acme.account, actor_group=group).count() == 3


def test_locked_values_win_over_posted_ones(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account)
    locked, other = ResourceFactory(account=acme.account), ResourceFactory(account=acme.account)
    client.post(f"/acme/policies/new?resource_id={locked.pk}", _post_data(group, other))
    assert Policy.objects.get(account=acme.account).resource_id == locked.pk


def test_create_duplicate(client: Client, acme: Acme) -> None:
    policy = PolicyFactory(account=acme.account)
    response = client.post("/acme/policies/new", _post_data(policy.actor_group, policy.resource))
    assert response.status_code == 200
    assert DUPLICATE in _text(response)
    assert 'data-validation-error-for="policy[base]"' in _text(response)


def test_create_description_too_long(client: Client, acme: Acme) -> None:
    group, resource = GroupFactory(account=acme.account), ResourceFactory(account=acme.account)
    data = _post_data(group, resource, **{"policy[description]": "x" * 1025})
    html = _text(client.post("/acme/policies/new", data))
    assert "should be at most 1024 character(s)" in html


def test_create_condition_errors_stay_on_their_panel(client: Client, acme: Acme) -> None:
    group, resource = GroupFactory(account=acme.account), ResourceFactory(account=acme.account)
    data = _post_data(
        group,
        resource,
        **{
            f"{IP}[operator]": "is_in_cidr",
            f"{IP}[values][]": ["10.0.0.0/8", "nope"],
            f"{TIME}[timezone]": "UTC",
            f"{TIME}[values][T]": "25:00-26:00",
        },
    )
    response = client.post("/acme/policies/new", data)
    html = _text(response)
    assert response.status_code == 200
    assert "nope is not a valid IP address or CIDR range" in html
    assert "invalid time range: 25:00-26:00" in html
    # Re-rendered with the values, the panels open and a blank "or" input after them.
    assert 'value="nope"' in html and 'id="policy_conditions_remote_ip_values_2"' in html
    assert '<details class="condition" id="policy_conditions_remote_ip" open>' in html
    assert not Policy.objects.exists()


def test_create_time_condition_messages(client: Client, acme: Acme) -> None:
    group, resource = GroupFactory(account=acme.account), ResourceFactory(account=acme.account)
    data = _post_data(group, resource, **{f"{TIME}[values][M]": "17:00-9:00"})
    html = _text(client.post("/acme/policies/new", data))
    assert "timezone is required" in html
    data[f"{TIME}[timezone]"] = "Mars/Olympus"
    html = _text(client.post("/acme/policies/new", data))
    assert "invalid timezone" in html
    data[f"{TIME}[timezone]"] = "UTC"
    html = _text(client.post("/acme/policies/new", data))
    assert "start of the time range must be less than or equal to the end of it" in html


def test_internet_resource_drops_time_windows(client: Client, acme: Acme) -> None:
    group = GroupFactory(account=acme.account)
    internet = ResourceFactory(account=acme.account, internet=True)
    data = _post_data(
        group,
        internet,
        **{
            f"{LOCATION}[operator]": "is_not_in",
            f"{LOCATION}[values][]": ["DE"],
            f"{TIME}[timezone]": "UTC",
            f"{TIME}[values][M]": "9-17",
        },
    )
    assert client.post("/acme/policies/new", data).status_code == 302
    policy = Policy.objects.get(account=acme.account)
    assert [c["property"] for c in policy.conditions] == ["remote_ip_location_region"]


def test_without_conditions_feature(client: Client, acme: Acme) -> None:
    acme.account.features = {**acme.account.features, "policy_conditions": False}
    acme.account.save()
    resource = ResourceFactory(account=acme.account)
    html = _text(client.get(f"/acme/policies/new?resource_id={resource.pk}"))
    assert "UPGRADE TO UNLOCK" in html
    assert "conditions-locked" in html and " disabled>" in html
    data = _post_data(
        GroupFactory(account=acme.account),
        resource,
        **{f"{LOCATION}[operator]": "is_in", f"{LOCATION}[values][]": ["US"]},
    )
    assert client.post("/acme/policies/new", data).status_code == 302
    assert Policy.objects.get(account=acme.account).conditions == []


# --- detail --------------------------------------------------------------------------------------


def test_detail_renders_sentence(client: Client, acme: Acme) -> None:
    oidc = ProviderFactory(account=acme.account, oidc=True, name="Okta")
    policy = PolicyFactory(
        account=acme.account,
        actor_group__name="Engineering",
        resource__name="GitLab",
        description="For <engineers>",
        conditions=[
            {"property": "remote_ip_location_region", "operator": "is_in", "values": ["US"]},
            {"property": "remote_ip", "operator": "is_not_in_cidr", "values": ["10.0.0.0/8"]},
            {"property": "provider_id", "operator": "is_in",
             "values": [str(oidc.pk), str(acme.email_provider.pk)]},
            {"property": "client_verified", "operator": "is", "values": ["true"]},
            {"property": "current_utc_datetime", "operator": "is_in_day_of_week_time_ranges",
             "values": ["M/9:00-17:00/UTC", "W/true/UTC"]},
        ],
    )  # fmt: skip
    response = client.get(f"/acme/policies/{policy.pk}")
    html = _text(response)
    assert response.status_code == 200
    assert f"<title>Policy {policy.pk} · Firezone</title>" in html
    assert "Engineering → GitLab" in html
    assert "Edit Policy" in html and "Disable" in html and "Delete Policy" in html
    assert "Confirm disabling the Policy" in html
    assert "This will <strong>immediately</strong> revoke all access granted by it." in html
    assert "This policy can be used from <strong>United States</strong>" in html
    assert "from IP addresses that are not in <strong>10.0.0.0/8</strong>" in html
    assert f'<a href="/acme/settings/identity_providers/openid_connect/{oidc.pk}">' in html
    assert f'<a href="/acme/settings/identity_providers/system/{acme.email_provider.pk}">' in html
    assert "provider(s)" in html
    assert "by clients that are verified" in html
    assert (
        "on <strong>Mondays (09:00:00 - 17:00:00 UTC)</strong>, "
        "<strong>Wednesdays (00:00:00 - 23:59:59 UTC)</strong>"
    ) in html
    assert "For &lt;engineers&gt;" in html
    assert "Recent Connections" in html and "No activity to display." in html
    assert 'data-live-topics="changes:policies"' in html


def test_detail_without_conditions_has_no_row(client: Client, acme: Acme) -> None:
    policy = PolicyFactory(account=acme.account)
    html = _text(client.get(f"/acme/policies/{policy.pk}"))
    assert "This policy can be used" not in html and "<th>Conditions</th>" not in html


def test_detail_by_persistent_id(client: Client, acme: Acme) -> None:
    policy = PolicyFactory(account=acme.account)
    assert client.get(f"/acme/policies/{policy.persistent_id}").status_code == 200


def test_detail_recent_connections(client: Client, acme: Acme) -> None:
    world = World(acme.account)
    flow = make_flow(world)
    html = _text(client.get(f"/acme/policies/{world.policy.pk}"))
    assert f'id="flows-{flow.pk}"' in html
    assert f"{world.client.name}</a> owned by" in html
    assert f"{world.site.name}-{world.gateway.name}" in html
    assert "198.51.100.7" in html and "203.0.113.10" in html


def test_disable_enable_delete(client: Client, acme: Acme) -> None:
    policy = PolicyFactory(account=acme.account, actor_group__name="Eng", resource__name="Git")
    path = f"/acme/policies/{policy.pk}"
    response = client.post(path, {"action": "disable"})
    assert response.status_code == 302 and response["Location"] == path
    policy.refresh_from_db()
    assert policy.disabled_at is not None
    html = _text(client.get(path))
    assert "(disabled)" in html and "Confirm enabling the Policy" in html
    assert "Confirm disabling the Policy" not in html

    client.post(path, {"action": "enable"})
    policy.refresh_from_db()
    assert policy.disabled_at is None
    assert "(disabled)" not in _text(client.get(path))

    response = client.post(path, {"action": "delete"})
    assert response["Location"] == "/acme/policies"
    assert not Policy.objects.filter(pk=policy.pk).exists()
    assert client.get(path).status_code == 404


# --- edit ----------------------------------------------------------------------------------------


def test_edit_prefilled_and_saved(client: Client, acme: Acme) -> None:
    policy = PolicyFactory(
        account=acme.account,
        description="Old",
        conditions=[
            {"property": "remote_ip_location_region", "operator": "is_not_in", "values": ["FR"]},
            {"property": "current_utc_datetime", "operator": "is_in_day_of_week_time_ranges",
             "values": ["T/8-12/Europe/Paris"]},
        ],
    )  # fmt: skip
    path = f"/acme/policies/{policy.pk}/edit"
    html = _text(client.get(path))
    assert f"<title>Edit Policy {policy.pk} · Firezone</title>" in html
    assert ">Old</textarea>" in html
    assert '<option value="is_not_in" selected>' in html
    assert '<option value="FR" selected>France</option>' in html
    assert 'value="8-12"' in html
    assert '<option value="Europe/Paris" selected>' in html
    assert "Updating Policy..." in html and ">Save</button>" in html

    other_group = GroupFactory(account=acme.account)
    data = _post_data(
        other_group,
        policy.resource,
        **{
            "policy[description]": "New",
            f"{IP}[operator]": "is_in_cidr",
            f"{IP}[values][]": ["192.168.0.0/16"],
        },
    )
    response = client.post(path, data)
    assert response.status_code == 302
    assert response["Location"] == f"/acme/policies/{policy.pk}"
    policy.refresh_from_db()
    assert policy.actor_group_id == other_group.pk
    assert policy.description == "New"
    assert policy.conditions == [
        {"property": "remote_ip", "operator": "is_in_cidr", "values": ["192.168.0.0/16"]}
    ]


def test_edit_errors(client: Client, acme: Acme) -> None:
    existing = PolicyFactory(account=acme.account)
    policy = PolicyFactory(account=acme.account, resource=existing.resource)
    path = f"/acme/policies/{policy.pk}/edit"
    html = _text(client.post(path, _post_data(existing.actor_group, existing.resource)))
    assert DUPLICATE in html
    html = _text(client.post(path, _post_data(None, existing.resource)))
    assert "can&#x27;t be blank" in html


def test_edit_without_feature_keeps_conditions(client: Client, acme: Acme) -> None:
    stored = [{"property": "remote_ip_location_region", "operator": "is_in", "values": ["US"]}]
    policy = PolicyFactory(account=acme.account, conditions=stored)
    acme.account.features = {**acme.account.features, "policy_conditions": False}
    acme.account.save()
    data = _post_data(policy.actor_group, policy.resource, **{"policy[description]": "x"})
    assert client.post(f"/acme/policies/{policy.pk}/edit", data).status_code == 302
    policy.refresh_from_db()
    assert policy.conditions == stored and policy.description == "x"


# --- the form and sentence helpers ---------------------------------------------------------------


def test_every_country_code_has_a_name() -> None:
    assert set(COUNTRY_NAMES) == conds.COUNTRY_CODES
    assert COUNTRY_NAMES["US"] == "United States"


def test_sentence_wording() -> None:
    sentence = describe_conditions(
        [
            {"property": "remote_ip_location_region", "operator": "is_not_in",
             "values": ["US", "CA"]},
            {"property": "provider_id", "operator": "is_not_in", "values": [str(uuid.uuid4())]},
            {"property": "client_verified", "operator": "is", "values": ["false"]},
        ],
        providers={},
        provider_url=lambda p: "",
    )  # fmt: skip
    assert sentence == (
        "This policy can be used from any countries except "
        "<strong>United States, Canada</strong> by clients that are not verified"
    )
    assert describe_conditions([], providers={}, provider_url=lambda p: "") is None


def test_form_round_trip_of_time_values() -> None:
    policy = PolicyFactory.build(
        conditions=[
            {"property": "current_utc_datetime", "operator": "is_in_day_of_week_time_ranges",
             "values": ["M/9-12/US/Pacific", "M/13-17/US/Pacific", "S/true/US/Pacific"]},
        ],
    )  # fmt: skip
    form = PolicyForm.from_policy(policy)
    assert form.time.timezone == "US/Pacific"
    assert form.time.days == {"M": "9-12, 13-17", "S": "true"}
    assert form.conditions(resource_type="dns")[0]["values"] == [
        "M/9-12, 13-17/US/Pacific",
        "S/true/US/Pacific",
    ]
    assert form.conditions(resource_type="internet") == []
