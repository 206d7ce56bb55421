"""A small world of domain rows (an account with an actor, provider, identity, group, token,
sites, gateway, client, resources, policy and flow, written through the ORM with the `SYSTEM`
creator) for the database-schema tests (tests/test_schema_behaviour.py) and the staff admin
tests (accounts/tests/test_admin.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from accounts.models import (
    Account,
    Actor,
    ActorGroup,
    ActorGroupMembership,
    AuthIdentity,
    AuthProvider,
    CreatedBy,
    Token,
)
from gateways.models import Client, Gateway, NetworkAddress, Site
from resources.models import Flow, Policy, Resource, ResourceConnection

SYSTEM = {"created_by": CreatedBy.SYSTEM, "created_by_subject": {"name": "System", "email": None}}


@dataclass
class World:
    account: Account
    actor: Actor
    provider: AuthProvider
    identity: AuthIdentity
    group: ActorGroup
    membership: ActorGroupMembership
    token: Token
    site: Site
    internet_site: Site
    gateway: Gateway
    client: Client
    resource: Resource
    internet_resource: Resource
    policy: Policy
    flow: Flow


def make_account(slug: str = "acme") -> Account:
    return Account.objects.create(name=slug.title(), legal_name=slug.title(), slug=slug)


def make_world(slug: str = "acme") -> World:
    account = make_account(slug)
    actor = Actor.objects.create(account=account, name="Ada", type=Actor.Type.ACCOUNT_ADMIN_USER)
    provider = AuthProvider.objects.create(
        account=account,
        name="Email",
        adapter=AuthProvider.Adapter.EMAIL,
        provisioner=AuthProvider.Provisioner.MANUAL,
        **SYSTEM,
    )
    identity = AuthIdentity.objects.create(
        account=account,
        actor=actor,
        provider=provider,
        provider_identifier="ada@example.com",
        email="ada@example.com",
        **SYSTEM,
    )
    group = ActorGroup.objects.create(
        account=account, name="Everyone", type=ActorGroup.Type.MANAGED, **SYSTEM
    )
    membership = ActorGroupMembership.objects.create(account=account, actor=actor, group=group)
    token = Token.objects.create(
        account=account,
        type=Token.Type.CLIENT,
        actor=actor,
        identity=identity,
        secret_salt="salt",
        secret_hash="hash",
        **SYSTEM,
    )
    site = Site.objects.create(account=account, name="Default Site", **SYSTEM)
    internet_site = Site.objects.create(
        account=account, name="Internet", managed_by=Site.ManagedBy.SYSTEM, **SYSTEM
    )
    now = timezone.now()
    last_seen = {
        "last_seen_user_agent": "Linux/6 connlib/1.4.0",
        "last_seen_remote_ip": "203.0.113.7",
        "last_seen_version": "1.4.0",
        "last_seen_at": now,
    }
    NetworkAddress.objects.create(account=account, address="100.64.0.2", type="ipv4")
    NetworkAddress.objects.create(account=account, address="100.64.0.3", type="ipv4")
    gateway = Gateway.objects.create(
        account=account,
        group=site,
        external_id="gw-1",
        name="gw",
        public_key="G" * 44,
        ipv4="100.64.0.2",
        **last_seen,
    )
    client = Client.objects.create(
        account=account,
        actor=actor,
        identity=identity,
        external_id="dev-1",
        name="laptop",
        public_key="C" * 44,
        ipv4="100.64.0.3",
        **last_seen,
    )
    resource = Resource.objects.create(
        account=account,
        name="wiki",
        type=Resource.Type.DNS,
        address="wiki.example.com",
        ip_stack=Resource.IpStack.DUAL,
        **SYSTEM,
    )
    internet_resource = Resource.objects.create(
        account=account, name="Internet", type=Resource.Type.INTERNET, **SYSTEM
    )
    ResourceConnection.objects.create(
        account=account, resource=resource, gateway_group=site, **SYSTEM
    )
    ResourceConnection.objects.create(
        account=account, resource=internet_resource, gateway_group=internet_site, **SYSTEM
    )
    policy = Policy.objects.create(account=account, actor_group=group, resource=resource, **SYSTEM)
    flow = Flow.objects.create(
        account=account,
        policy=policy,
        client=client,
        gateway=gateway,
        resource=resource,
        token=token,
        actor_group_membership=membership,
        client_remote_ip="203.0.113.7",
        client_user_agent="connlib/1.4.0",
        gateway_remote_ip="198.51.100.1",
        expires_at=now + timedelta(hours=1),
    )
    return World(
        account=account,
        actor=actor,
        provider=provider,
        identity=identity,
        group=group,
        membership=membership,
        token=token,
        site=site,
        internet_site=internet_site,
        gateway=gateway,
        client=client,
        resource=resource,
        internet_resource=internet_resource,
        policy=policy,
        flow=flow,
    )
