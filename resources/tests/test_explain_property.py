"""The access explainer agrees with create_flow (a Hypothesis property).

For random accounts (groups, memberships, Everyone and synced groups, disabled policies,
conditions on time windows, locations, IP ranges, providers and verification, connected or
unconnected resources, gateways of several versions online or not) and random contexts, the
explainer's verdict — allowed, granting policy, expiry — equals what the client socket's
`create_flow` decides: the access hub's model (`gateways.hub.model.AccessModel`, loaded like a
hub loads it) computes the client's connectable set, `AccessModel.authorize` is the socket's
`_authorize`, and `resources.access.gateway_choose` its gateway step. Every denial names a
reason. Nothing is copied from the explainer: the hub side runs only the socket's code.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from accounts.models import ActorGroup
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    IdentityFactory,
    MembershipFactory,
    ProviderFactory,
)
from gateways.hub.model import AccessModel
from gateways.models import Site
from resources import access
from resources import conditions as conds
from resources.explain import access_explain
from resources.tests.factories import (
    ClientFactory,
    ConnectionFactory,
    GatewayFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
    client_token,
)

MONDAY = datetime(2025, 10, 6, tzinfo=UTC)
REGIONS = ("DE", "US", "FR")
IPS = ("10.0.0.7", "192.168.1.20", "198.51.100.7", "2001:db8::5")
CIDRS = ("10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "198.51.100.7")
ZONES = ("UTC", "Europe/Berlin", "America/New_York")


def _time_values(data: st.DataObject) -> list[str]:
    zone = data.draw(st.sampled_from(ZONES))
    days = data.draw(st.lists(st.sampled_from("MTWRFSU"), min_size=1, max_size=4, unique=True))
    values = []
    for day in days:
        start = data.draw(st.integers(0, 22))
        end = data.draw(st.integers(start, 23))
        values.append(f"{day}/{start:02d}:00-{end:02d}:59/{zone}")
    return values


def _condition(data: st.DataObject, providers: list[str]) -> dict[str, Any]:
    prop = data.draw(st.sampled_from([p.value for p in conds.Property]))
    if prop == conds.Property.REMOTE_IP_LOCATION_REGION:
        op = data.draw(st.sampled_from(["is_in", "is_not_in"]))
        values = data.draw(st.lists(st.sampled_from(REGIONS), min_size=1, unique=True))
    elif prop == conds.Property.REMOTE_IP:
        op = data.draw(st.sampled_from(["is_in_cidr", "is_not_in_cidr"]))
        values = data.draw(st.lists(st.sampled_from(CIDRS), min_size=1, unique=True))
    elif prop == conds.Property.PROVIDER_ID:
        op = data.draw(st.sampled_from(["is_in", "is_not_in"]))
        values = data.draw(st.lists(st.sampled_from(providers), min_size=1, unique=True))
    elif prop == conds.Property.CLIENT_VERIFIED:
        op, values = "is", [data.draw(st.sampled_from(["true", "false"]))]
    else:
        op, values = "is_in_day_of_week_time_ranges", _time_values(data)
    return {"property": prop, "operator": op, "values": values}


def _mostly() -> st.SearchStrategy[bool]:
    """True three times in four: interesting cases need members, gateways and policies."""
    return st.sampled_from([True, True, True, False])


def _world(data: st.DataObject) -> dict[str, Any]:
    account = AccountFactory()
    providers = [ProviderFactory(account=account, oidc=True) for _ in range(2)]
    provider_ids = [str(p.pk) for p in providers]
    actor = ActorFactory(account=account)
    groups = [GroupFactory(account=account) for _ in range(data.draw(st.integers(1, 3)))]
    groups.append(GroupFactory(account=account, name="Everyone", type=ActorGroup.Type.MANAGED))
    groups.append(
        GroupFactory(account=account, provider=providers[0], provider_identifier="directory-1")
    )
    for group in groups:
        if data.draw(_mostly()):
            MembershipFactory(group=group, actor=actor, account=account)
    identity_provider = data.draw(st.sampled_from([None, *providers]))
    identity = (
        IdentityFactory(account=account, actor=actor, provider=identity_provider)
        if identity_provider is not None
        else None
    )
    verified = data.draw(st.booleans())
    client = ClientFactory(
        actor=actor,
        account=account,
        identity=identity,
        last_seen_remote_ip=data.draw(st.sampled_from(IPS)),
        last_seen_remote_ip_location_region=data.draw(st.sampled_from((None, *REGIONS))),
        last_seen_version=data.draw(st.sampled_from(["1.4.0", "1.5.2", "1.3.9"])),
        verified_at=MONDAY if verified else None,
        verified_by="system" if verified else None,
        verified_by_subject={} if verified else None,
    )
    expires_in = data.draw(st.sampled_from([None, timedelta(hours=3), timedelta(days=30)]))
    token = client_token(actor, expires_in=expires_in)
    if identity is not None:  # a user's session token names the identity it signed in with
        token.identity = identity
        token.save()
    resource_type = data.draw(st.sampled_from(["dns", "ip", "cidr", "internet"]))
    address = {"dns": "app.example.com", "ip": "10.1.2.3", "cidr": "10.2.0.0/16"}
    resource = ResourceFactory(
        account=account,
        type=resource_type,
        address=address.get(resource_type),
        ip_stack="dual" if resource_type == "dns" else None,
        name=data.draw(st.sampled_from(["alpha", "Beta"])),
    )
    if resource_type == "internet":  # only in the system's Internet site (a trigger)
        sites = [
            SiteFactory(account=account, name="Internet", managed_by=Site.ManagedBy.SYSTEM)
            for _ in range(data.draw(st.sampled_from([1, 1, 1, 0])))
        ]
    else:
        count = data.draw(st.sampled_from([1, 1, 2, 0]))
        sites = [SiteFactory(account=account) for _ in range(count)]
    gateways = []
    for site in sites:
        ConnectionFactory(resource=resource, gateway_group=site, account=account)
        for _ in range(data.draw(st.sampled_from([1, 1, 2, 0]))):
            gateways.append(
                GatewayFactory(
                    group=site,
                    account=account,
                    last_seen_version=data.draw(st.sampled_from(["1.4.0", "1.3.0", "1.5.0"])),
                )
            )
    # One policy per group and resource (a unique index).
    some = data.draw(st.sampled_from([1] * 9 + [0]))
    for group in data.draw(
        st.lists(st.sampled_from(groups), min_size=some, max_size=4, unique=True)
    ):
        PolicyFactory(
            account=account,
            actor_group=group,
            resource=resource,
            disabled_at=None if data.draw(_mostly()) else MONDAY,
            conditions=[
                _condition(data, provider_ids) for _ in range(data.draw(st.integers(0, 3)))
            ],
        )
    online = [g.pk for g in gateways if data.draw(_mostly())]
    return {
        "account": account,
        "actor": actor,
        "client": client,
        "token": token,
        "resource": resource,
        "online": online,
        "providers": provider_ids,
    }


def _overrides(data: st.DataObject, providers: list[str]) -> dict[str, Any]:
    """Explicit context arguments (each may be left to the client's last-seen default)."""
    chosen: dict[str, Any] = {}
    if data.draw(st.booleans()):
        chosen["location"] = data.draw(st.sampled_from(REGIONS))
    if data.draw(st.booleans()):
        chosen["remote_ip"] = data.draw(st.sampled_from(IPS))
    if data.draw(st.booleans()):
        chosen["provider_id"] = data.draw(st.sampled_from(providers))
    if data.draw(st.booleans()):
        chosen["verified"] = data.draw(st.booleans())
    return chosen


def _create_flow_verdict(world: dict[str, Any], ctx: conds.RequestContext) -> tuple[Any, Any]:
    """What the client socket does for `create_flow` (gateways/consumers/client.py): its hub's
    view (the connectable set it told the client), `_authorize`, then `gateway_choose`."""
    client, actor = world["client"], world["actor"]
    model = AccessModel.load(world["account"].pk)
    grantset = model.grantset(actor.pk)
    told = model.client_view(grantset, ctx, client.last_seen_version)
    auth = model.authorize(
        actor.pk,
        world["resource"].pk,
        ctx=ctx,
        token_expires_at=world["token"].expires_at,
        connectable_ids=told.resources.keys(),
    )
    gateway = None
    if auth.ok:
        resource = model.granted_resource(actor.pk, auth.resource_id)
        assert resource is not None
        gateway = access.gateway_choose(
            account_id=world["account"].pk,
            client_id=client.pk,
            resource=resource,
            client_version=client.last_seen_version,
            online_gateway_ids={str(g) for g in world["online"]},
            lat=client.last_seen_remote_ip_location_lat,
            lon=client.last_seen_remote_ip_location_lon,
        )
    return auth, gateway


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=int(os.environ.get("EXPLAIN_EXAMPLES", "60")),
    deadline=None,
    # Shrinking rebuilds accounts row by row for minutes; a failure prints its draws anyway.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_explainer_verdict_equals_create_flow(data: st.DataObject) -> None:
    world = _world(data)
    at = MONDAY + timedelta(minutes=data.draw(st.integers(0, 7 * 24 * 60 - 1)))
    overrides = _overrides(data, world["providers"])
    explanation = access_explain(
        account=world["account"],
        actor=world["actor"],
        resource=world["resource"],
        at=at,
        online_gateway_ids=world["online"],
        **overrides,
    )

    # The socket's own context (`ClientConsumer._ctx`), with the same explicit inputs.
    client = world["client"]
    identity = client.identity
    ctx = conds.RequestContext(
        now=at,
        remote_ip=overrides.get("remote_ip", client.last_seen_remote_ip),
        remote_ip_location_region=overrides.get(
            "location", client.last_seen_remote_ip_location_region
        ),
        provider_id=overrides.get(
            "provider_id", identity.provider_id if identity is not None else None
        ),
        client_verified=overrides.get("verified", client.verified_at is not None),
    )
    auth, gateway = _create_flow_verdict(world, ctx)

    assert explanation.authorized == auth.ok
    assert explanation.allowed == (auth.ok and gateway is not None)
    granting = explanation.granting_policy
    assert (granting.policy_id if granting else None) == (auth.policy_id if auth.ok else None)
    assert explanation.expires_at == (auth.expires_at if auth.ok else None)
    if auth.ok:
        assert granting is not None and granting.grants
    event("allowed" if explanation.allowed else f"denied: {(explanation.reason or '')[:24]}")
    if not explanation.allowed:
        assert explanation.reason, explanation
    else:
        assert explanation.reason is None
        assert explanation.chosen_gateway_id is not None
    # Per-policy lines agree with the evaluator the verdict used.
    for check in explanation.policies:
        passed = all(c.passed for c in check.conditions)
        assert check.grants == (check.member and not check.disabled and passed)
        for condition in check.conditions:
            assert condition.passed or condition.reason
