""" "Check access" pages (issue 18 item 6), with the Django test client: the form on the actor and
resource pages, the answer (allowed / denied, policies, conditions, sites), tenant isolation and
bad input as form errors.

The routes' generic checks (signed out, non-admins, other accounts' and malformed path ids) are
in tests/test_portal_routes.py.
"""

from __future__ import annotations

import html
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from accounts.models import Actor
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    MembershipFactory,
    ProviderFactory,
    synced_group,
)
from accounts.tests.portal import UA, Acme, inject_session
from gateways import presence
from gateways.models import Gateway
from resources.tests._policy_pages import acme_fixture, client_fixture  # noqa: F401
from resources.tests.factories import (
    ClientFactory,
    ConnectionFactory,
    GatewayFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
)

pytestmark = pytest.mark.django_db

# Mon-Fri 09:00-17:00 in Berlin; 2026-12-05 is a Saturday.
WORK_HOURS = [f"{day}/09:00-17:00/Europe/Berlin" for day in "MTWRF"]
TIME_CONDITION = {
    "property": "current_utc_datetime",
    "operator": "is_in_day_of_week_time_ranges",
    "values": WORK_HOURS,
}
WINDOW_REASON = "outside the time window Mon–Fri 09:00–17:00 Europe/Berlin"


@pytest.fixture(autouse=True)
def _presence_prefix(settings: Any) -> None:
    settings.PRESENCE_KEY_PREFIX = f"test-presence:{uuid.uuid4().hex}"


def _online(gateway: Gateway) -> None:
    async def track() -> None:
        await presence.track_many(
            f"conn-{gateway.pk}",
            [(presence.account_gateways_topic(gateway.account_id), str(gateway.pk), {})],
        )
        await presence.aclose()

    async_to_sync(track)()


class Setup:
    """Jane (in Engineering, added manually) with a laptop; GitLab at site HQ with one gateway;
    one policy Engineering → GitLab (conditions given)."""

    def __init__(self, acme: Acme, conditions: list[dict[str, Any]] | None = None) -> None:
        account = acme.account
        self.jane = ActorFactory(account=account, name="Jane", type=Actor.Type.ACCOUNT_USER)
        self.group = GroupFactory(account=account, name="Engineering")
        MembershipFactory(group=self.group, actor=self.jane, account=account)
        self.laptop = ClientFactory(actor=self.jane, account=account, name="jane-laptop")
        self.site = SiteFactory(account=account, name="HQ")
        self.gateway = GatewayFactory(group=self.site, account=account, name="gw-hq")
        self.resource = ResourceFactory(account=account, name="GitLab")
        ConnectionFactory(resource=self.resource, gateway_group=self.site, account=account)
        self.policy = PolicyFactory(
            account=account,
            actor_group=self.group,
            resource=self.resource,
            conditions=conditions or [],
            description="Engineers",
        )


def _text(response: Any) -> str:
    return html.unescape(response.content.decode())


def _actor_access(client: Client, actor: Any, **query: Any) -> Any:
    return client.get(f"/acme/actors/{actor.pk}/access?{urlencode(query)}")


def _resource_access(client: Client, resource: Any, **query: Any) -> Any:
    return client.get(f"/acme/resources/{resource.pk}/access?{urlencode(query)}")


# --- the form on the detail pages ----------------------------------------------------------------


def test_actor_page_offers_check_access(client: Client, acme: Acme) -> None:
    s = Setup(acme)
    text = _text(client.get(f"/acme/actors/{s.jane.pk}"))
    assert 'id="actor-access"' in text and "Check access" in text
    assert f'action="/acme/actors/{s.jane.pk}/access"' in text and 'method="get"' in text
    assert f'<option value="{s.resource.pk}">GitLab</option>' in text
    assert f'<option value="{s.laptop.pk}">jane-laptop</option>' in text
    assert "default: now, from the client's last seen context" in text
    assert '<option value="DE">Germany</option>' in text
    assert f'<option value="{acme.email_provider.pk}">Email</option>' in text


def test_resource_page_offers_check_access(client: Client, acme: Acme) -> None:
    s = Setup(acme)
    text = _text(client.get(f"/acme/resources/{s.resource.pk}"))
    assert 'id="resource-access"' in text
    assert f'action="/acme/resources/{s.resource.pk}/access"' in text
    assert f'<option value="{s.jane.pk}">Jane</option>' in text
    assert f'<option value="{s.laptop.pk}">jane-laptop (Jane)</option>' in text


def test_access_page_without_a_question_shows_the_form_only(client: Client, acme: Acme) -> None:
    s = Setup(acme)
    response = client.get(f"/acme/actors/{s.jane.pk}/access")
    assert response.status_code == 200
    text = _text(response)
    assert 'id="access-form"' in text and 'id="access-answer"' not in text
    assert "field-error" not in text


# --- answers -------------------------------------------------------------------------------------


def test_allowed_names_the_policy_membership_and_gateway(client: Client, acme: Acme) -> None:
    s = Setup(acme)
    _online(s.gateway)
    response = _actor_access(client, s.jane, resource_id=s.resource.pk)
    assert response.status_code == 200
    text = _text(response)
    assert 'id="access-verdict"' in text and "Allowed" in text and "Denied" not in text
    assert f'href="/acme/policies/{s.policy.pk}">Engineering</a>' in text
    assert f'id="access-policy-{s.policy.pk}"' in text and "Member: added manually" in text
    assert f'id="access-site-{s.site.pk}"' in text
    assert f'href="/acme/gateways/{s.gateway.pk}">gw-hq</a>' in text
    assert "jane-laptop" in text  # the default client: its last seen one


def test_denied_outside_the_time_window(client: Client, acme: Acme) -> None:
    s = Setup(acme, [TIME_CONDITION])
    _online(s.gateway)
    response = _actor_access(
        client,
        s.jane,
        resource_id=s.resource.pk,
        client_id=s.laptop.pk,
        at="2026-12-05T10:00",
        timezone="Europe/Berlin",
    )
    assert response.status_code == 200
    text = _text(response)
    assert "Denied" in text and "Allowed" not in text
    assert f'<span id="access-reason">{WINDOW_REASON}</span>' in text
    assert 'data-passed="false">' in text and "Failed:" in text
    assert "Current time is within Mon–Fri 09:00–17:00 Europe/Berlin" in text
    assert "evaluated against Sat 10:00 Europe/Berlin" in text
    assert "Sat 2026-12-05 10:00:00 Europe/Berlin" in text  # the time evaluated, as asked


def test_inside_the_time_window_with_explicit_context(client: Client, acme: Acme) -> None:
    s = Setup(
        acme,
        [
            TIME_CONDITION,
            {"property": "remote_ip_location_region", "operator": "is_in", "values": ["DE"]},
            {
                "property": "provider_id",
                "operator": "is_in",
                "values": [str(acme.email_provider.pk)],
            },
        ],
    )
    _online(s.gateway)
    response = _actor_access(
        client,
        s.jane,
        resource_id=s.resource.pk,
        at="2026-12-07T10:00",
        timezone="Europe/Berlin",
        location="DE",
        remote_ip="203.0.113.7",
        provider_id=acme.email_provider.pk,
        verified="yes",
    )
    text = _text(response)
    assert "Allowed" in text and "Denied" not in text
    assert text.count('data-passed="true">') == 3
    assert "Sign-in provider is in Email" in text and "evaluated against Email" in text
    assert "Client location is in DE" in text and "evaluated against DE" in text
    assert "<tr><th>Location</th><td>DE</td></tr>" in text
    assert "<tr><th>Remote IP</th><td>203.0.113.7</td></tr>" in text
    assert "<tr><th>Sign-in provider</th><td>Email</td></tr>" in text
    assert "<tr><th>Verified</th><td>yes</td></tr>" in text
    assert 'id="access-context" open' in text  # the context given stays visible


def test_denied_when_not_a_member_shows_synced_membership_elsewhere(
    client: Client, acme: Acme
) -> None:
    s = Setup(acme)
    okta = ProviderFactory(account=acme.account, oidc=True, name="Okta")
    synced = synced_group(acme.account, provider=okta, name="Ops")
    MembershipFactory(group=synced, actor=s.jane, account=acme.account)
    PolicyFactory(account=acme.account, actor_group=synced, resource=s.resource)
    bob = ActorFactory(account=acme.account, name="Bob", type=Actor.Type.ACCOUNT_USER)
    text = _text(_resource_access(client, s.resource, actor_id=bob.pk))
    assert "Denied" in text and "Bob" in text
    assert text.count("Not a member") == 2
    # Jane through the resource page, by her client: the synced membership is named.
    text = _text(_resource_access(client, s.resource, client_id=s.laptop.pk))
    assert "Jane" in text and "Member: synced from Okta" in text
    assert "Member: added manually" in text


def test_no_gateway_online_is_denied_with_the_site(client: Client, acme: Acme) -> None:
    s = Setup(acme)
    text = _text(_actor_access(client, s.jane, resource_id=s.resource.pk))
    assert "Denied" in text and 'id="access-reason"' in text
    assert f'id="access-site-{s.site.pk}"' in text


# --- tenant isolation ----------------------------------------------------------------------------


def test_another_accounts_ids_in_the_query_are_404(client: Client, acme: Acme) -> None:
    s = Setup(acme)
    other = AccountFactory(name="Other", slug="other")
    their_actor = ActorFactory(account=other, name="Eve")
    their_resource = ResourceFactory(account=other)
    their_client = ClientFactory(actor=their_actor, account=other)
    assert _actor_access(client, s.jane, resource_id=their_resource.pk).status_code == 404
    assert (
        _actor_access(
            client, s.jane, resource_id=s.resource.pk, client_id=their_client.pk
        ).status_code
        == 404
    )
    assert _resource_access(client, s.resource, actor_id=their_actor.pk).status_code == 404
    assert _resource_access(client, s.resource, client_id=their_client.pk).status_code == 404
    for bad in ("not-a-uuid", str(uuid.uuid4())):
        assert _actor_access(client, s.jane, resource_id=bad).status_code == 404
        assert _resource_access(client, s.resource, actor_id=bad).status_code == 404


def test_non_admins_are_refused(acme: Acme) -> None:
    s = Setup(acme)
    identity = IdentityFactory(actor=s.jane, account=acme.account, provider=acme.email_provider)
    user = Client(HTTP_USER_AGENT=UA)
    inject_session(user, identity)
    assert _actor_access(user, s.jane, resource_id=s.resource.pk).status_code == 404
    assert _resource_access(user, s.resource, actor_id=s.jane.pk).status_code == 404


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"remote_ip": "300.1.2.3"}, "Enter a valid IPv4 or IPv6 address."),
        ({"location": "XX"}, "XX is not a known country"),
        ({"at": "next tuesday"}, "is not a valid date and time"),
        ({"at": "2026-13-40T25:61"}, "is not a valid date and time"),
        ({"timezone": "Mars/Olympus"}, "Select a valid choice."),
        ({"verified": "maybe"}, "Select a valid choice."),
        ({"provider_id": str(uuid.uuid4())}, "is not an identity provider of this account"),
        ({"resource_id": ""}, "can't be blank"),
    ],
)
def test_bad_input_is_a_form_error(
    client: Client, acme: Acme, query: dict[str, str], message: str
) -> None:
    s = Setup(acme)
    response = _actor_access(client, s.jane, **{"resource_id": str(s.resource.pk), **query})
    assert response.status_code == 200
    text = _text(response)
    assert f'<p class="field-error">{message}' in text
    assert 'id="access-answer"' not in text


def test_resource_page_needs_an_actor_or_a_client(client: Client, acme: Acme) -> None:
    s = Setup(acme)
    text = _text(_resource_access(client, s.resource, actor_id="", client_id=""))
    assert '<p class="field-error">Pick an actor or one of its clients</p>' in text
    assert 'id="access-answer"' not in text


def test_client_of_another_actor_is_a_form_error(client: Client, acme: Acme) -> None:
    s = Setup(acme)
    bob = ActorFactory(account=acme.account, name="Bob", type=Actor.Type.ACCOUNT_USER)
    bobs = ClientFactory(actor=bob, account=acme.account)
    response = _actor_access(client, s.jane, resource_id=s.resource.pk, client_id=bobs.pk)
    assert response.status_code == 200
    text = _text(response)
    assert '<p class="field-error">is not a client of this actor</p>' in text
    assert 'id="access-answer"' not in text
    response = _resource_access(client, s.resource, actor_id=s.jane.pk, client_id=bobs.pk)
    assert '<p class="field-error">is not a client of this actor</p>' in _text(response)
