"""factory_boy factories for resources tests, plus the sites/gateways/clients they need."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone

from accounts.auth import Subject
from accounts.models import Actor, Token
from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    GroupFactory,
    MembershipFactory,
    ModelFactory,
    subject_for,
)
from gateways.models import INTERNET_SITE_NAME, Client, Gateway, Site
from resources.models import Flow, Policy, Resource, ResourceConnection


class SiteFactory(ModelFactory[Site]):
    class Meta:
        model = Site

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"site-{n}")
    managed_by = Site.ManagedBy.ACCOUNT
    created_by = "system"

    class Params:
        internet = factory.Trait(name=INTERNET_SITE_NAME, managed_by=Site.ManagedBy.SYSTEM)


class GatewayFactory(ModelFactory[Gateway]):
    class Meta:
        model = Gateway

    group = factory.SubFactory(SiteFactory)
    account = factory.SelfAttribute("group.account")
    external_id = factory.Sequence(lambda n: f"gw-ext-{n}")
    name = factory.Sequence(lambda n: f"gateway-{n}")
    public_key = factory.Sequence(lambda n: f"gw-key-{n}")
    last_seen_user_agent = "Linux/6.1 connlib/1.4.0"
    last_seen_remote_ip = "203.0.113.10"
    last_seen_version = "1.4.0"
    last_seen_at = factory.LazyFunction(timezone.now)


class ClientFactory(ModelFactory[Client]):
    class Meta:
        model = Client

    actor = factory.SubFactory(ActorFactory)
    account = factory.SelfAttribute("actor.account")
    identity = None
    external_id = factory.Sequence(lambda n: f"client-ext-{n}")
    name = factory.Sequence(lambda n: f"client-{n}")
    public_key = factory.Sequence(lambda n: f"client-key-{n}")
    last_seen_user_agent = "macOS/14.0 apple-client/1.4.0"
    last_seen_remote_ip = "198.51.100.7"
    last_seen_remote_ip_location_region = "US"
    last_seen_version = "1.4.0"
    last_seen_at = factory.LazyFunction(timezone.now)


class ResourceFactory(ModelFactory[Resource]):
    class Meta:
        model = Resource

    account = factory.SubFactory(AccountFactory)
    type = Resource.Type.DNS
    address = factory.Sequence(lambda n: f"app{n}.example.com")
    name = factory.Sequence(lambda n: f"Resource {n}")
    ip_stack = Resource.IpStack.DUAL
    filters = factory.LazyFunction(list)
    created_by = "system"

    class Params:
        internet = factory.Trait(type="internet", address=None, ip_stack=None, name="Internet")


class ConnectionFactory(ModelFactory[ResourceConnection]):
    class Meta:
        model = ResourceConnection

    resource = factory.SubFactory(ResourceFactory)
    account = factory.SelfAttribute("resource.account")
    gateway_group = factory.SubFactory(SiteFactory, account=factory.SelfAttribute("..account"))
    created_by = "system"


class PolicyFactory(ModelFactory[Policy]):
    class Meta:
        model = Policy

    account = factory.SubFactory(AccountFactory)
    actor_group = factory.SubFactory(GroupFactory, account=factory.SelfAttribute("..account"))
    resource = factory.SubFactory(ResourceFactory, account=factory.SelfAttribute("..account"))
    conditions = factory.LazyFunction(list)
    created_by = "system"


def client_token(actor: Actor, *, expires_in: timedelta | None = timedelta(days=1)) -> Token:
    """A client session token row (the secret does not matter for these tests)."""
    return Token.objects.create(
        type=Token.Type.CLIENT,
        account=actor.account,
        actor=actor,
        secret_salt="salt",
        secret_hash="hash",
        expires_at=timezone.now() + expires_in if expires_in else None,
        created_by="system",
    )


def client_subject(actor: Actor, token: Token | None = None, **kwargs: Any) -> Subject:
    """A subject as the client socket builds it: the session token's id and expiry."""
    token = token or client_token(actor)
    return subject_for(actor, token_id=token.pk, expires_at=token.expires_at, **kwargs)


class World:
    """One account with a site + gateway, a connected DNS resource, a group with a member, a
    policy granting it, and that member's client."""

    def __init__(self, account: Any = None, *, actor_type: str = "account_user") -> None:
        self.account = account or AccountFactory()
        self.site = SiteFactory(account=self.account)
        self.gateway = GatewayFactory(group=self.site, account=self.account)
        self.resource = ResourceFactory(account=self.account)
        ConnectionFactory(resource=self.resource, gateway_group=self.site, account=self.account)
        self.group = GroupFactory(account=self.account)
        self.actor = ActorFactory(account=self.account, type=actor_type)
        self.membership = MembershipFactory(
            group=self.group, actor=self.actor, account=self.account
        )
        self.policy = PolicyFactory(
            account=self.account, actor_group=self.group, resource=self.resource
        )
        self.client = ClientFactory(actor=self.actor, account=self.account)


def make_flow(world: World, **kwargs: Any) -> Flow:
    token = kwargs.pop("token", None) or client_token(world.actor)
    defaults: dict[str, Any] = {
        "account": world.account,
        "policy": world.policy,
        "client": world.client,
        "gateway": world.gateway,
        "resource": world.resource,
        "token": token,
        "actor_group_membership": world.membership,
        "client_remote_ip": "198.51.100.7",
        "client_user_agent": "test",
        "gateway_remote_ip": "203.0.113.10",
        "expires_at": timezone.now() + timedelta(hours=1),
    }
    defaults.update(kwargs)
    return Flow.objects.create(**defaults)
