"""Policy pages (portal.md §4.4), with the Django test client: the new policy page, its pickers
and the conditions editor.

Shared fixtures: resources/tests/_policy_pages.py.
"""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.tests.factories import (
    GroupFactory,
    ProviderFactory,
    everyone_group,
    synced_group,
)
from accounts.tests.portal import Acme
from resources.models import Policy
from resources.tests._policy_pages import (  # noqa: F401
    DUPLICATE,
    IP,
    LOCATION,
    PROVIDER,
    TIME,
    VERIFIED,
    _post_data,
    _text,
    acme_fixture,
    client_fixture,
)
from resources.tests.factories import (
    ConnectionFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
)

pytestmark = pytest.mark.django_db

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
