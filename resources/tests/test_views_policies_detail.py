"""Policy pages (portal.md §4.4), with the Django test client: the detail page and its events,
editing, and the form and sentence helpers.

Shared fixtures: resources/tests/_policy_pages.py.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from accounts.tests.factories import (
    GroupFactory,
    ProviderFactory,
)
from accounts.tests.portal import Acme
from resources import conditions as conds
from resources.models import Policy
from resources.policy_forms import COUNTRY_NAMES, PolicyForm, describe_conditions
from resources.tests._policy_pages import (  # noqa: F401
    DUPLICATE,
    IP,
    _post_data,
    _text,
    acme_fixture,
    client_fixture,
)
from resources.tests.factories import (
    PolicyFactory,
    World,
    make_flow,
)

pytestmark = pytest.mark.django_db

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


def test_nul_byte_in_a_form_is_a_400_not_a_500(client: Client, acme: Acme) -> None:
    """Issue 17: the description went to PostgreSQL, which refuses NUL in text (a 500).
    `firezone.middleware.NulBytesMiddleware` answers any form or query with a NUL 400."""
    policy = PolicyFactory(account=acme.account, description="Old")
    path = f"/acme/policies/{policy.pk}/edit"
    data = _post_data(policy.actor_group, policy.resource, **{"policy[description]": "a\x00b"})
    response = client.post(path, data)
    assert response.status_code == 400
    assert "Bad Request" in _text(response)
    policy.refresh_from_db()
    assert policy.description == "Old"
    assert client.get("/acme/policies?q=%00").status_code == 400
    assert client.post(path, {**data, "policy[description]": "ab"}).status_code == 302
