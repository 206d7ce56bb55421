"""factory_boy factories for the gateways app (rows without tunnel addresses unless given)."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

import factory
from django.utils import timezone

from accounts.auth import SYSTEM_TRAIL, Context
from accounts.tests.factories import AccountFactory, ActorFactory, M, ModelFactory
from gateways.models import Client, Gateway, Relay, RelayGroup, Site

CLIENT_UA = "macOS/14.4 apple-client/1.3.0"
GATEWAY_UA = "Ubuntu/22.04 connlib/1.3.2 gateway/1.3.2"
RELAY_UA = "Linux/6.1 relay/1.3.0"


def public_key() -> str:
    """A random WireGuard-shaped public key (base64 of 32 bytes: 44 characters)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def device_context(user_agent: str = CLIENT_UA, **kwargs) -> Context:
    kwargs.setdefault("remote_ip", "203.0.113.7")
    return Context(type="client", user_agent=user_agent, **kwargs)


class SiteFactory(ModelFactory[Site]):
    class Meta:
        model = Site

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"site-{n}")
    managed_by = Site.ManagedBy.ACCOUNT
    created_by = SYSTEM_TRAIL["created_by"]

    class Params:
        internet = factory.Trait(name="Internet", managed_by=Site.ManagedBy.SYSTEM)


class _LastSeen(ModelFactory[M]):
    class Meta:
        abstract = True

    last_seen_remote_ip = "203.0.113.1"
    last_seen_at = factory.LazyFunction(timezone.now)


class GatewayFactory(_LastSeen[Gateway]):
    class Meta:
        model = Gateway

    group = factory.SubFactory(SiteFactory)
    account = factory.SelfAttribute("group.account")
    external_id = factory.Sequence(lambda n: f"gateway-{n}")
    name = factory.Sequence(lambda n: f"gw{n}")
    public_key = factory.LazyFunction(public_key)
    last_seen_user_agent = GATEWAY_UA
    last_seen_version = "1.3.2"


class ClientFactory(_LastSeen[Client]):
    class Meta:
        model = Client

    actor = factory.SubFactory(ActorFactory)
    account = factory.SelfAttribute("actor.account")
    external_id = factory.Sequence(lambda n: f"client-{n}")
    name = factory.Sequence(lambda n: f"device-{n}")
    public_key = factory.LazyFunction(public_key)
    last_seen_user_agent = CLIENT_UA
    last_seen_version = "1.3.0"


class RelayGroupFactory(ModelFactory[RelayGroup]):
    class Meta:
        model = RelayGroup

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"relays-{n}")
    created_by = SYSTEM_TRAIL["created_by"]

    class Params:
        global_ = factory.Trait(account=None)


class RelayFactory(_LastSeen[Relay]):
    class Meta:
        model = Relay

    group = factory.SubFactory(RelayGroupFactory)
    account = factory.SelfAttribute("group.account")
    ipv4 = factory.Sequence(lambda n: f"198.51.{n // 250 % 250}.{n % 250 + 1}")
    port = 3478
    last_seen_user_agent = RELAY_UA
    last_seen_version = "1.3.0"


def subject_of(kind: str, account, **kwargs):
    """A subject of a new actor of the given type (`admin` is short for `account_admin_user`)
    in `account`, connecting from a device."""
    from accounts.tests.factories import subject_of_type

    kwargs.setdefault("context", device_context())
    return subject_of_type(account, "account_admin_user" if kind == "admin" else kind, **kwargs)


def flow_for(client: Client, gateway: Gateway | None = None):
    """A flow of `client` (through a new policy, resource, token and membership) on `gateway`."""
    from accounts.models import Token
    from accounts.tests.factories import GroupFactory, MembershipFactory
    from resources.models import Flow, Policy, Resource

    account = client.account
    gateway = gateway or GatewayFactory(group=SiteFactory(account=account))
    group = GroupFactory(account=account)
    membership = MembershipFactory(group=group, actor=client.actor)
    resource = Resource.objects.create(
        account=account,
        type="dns",
        address="*.example.com",
        name="example",
        ip_stack="dual",
        created_by="system",
    )
    policy = Policy.objects.create(
        account=account, actor_group=group, resource=resource, created_by="system"
    )
    token = Token.objects.create(
        type="client",
        account=account,
        actor=client.actor,
        secret_salt="salt",
        secret_hash="hash",
        created_by="system",
    )
    return Flow.objects.create(
        policy=policy,
        client=client,
        gateway=gateway,
        resource=resource,
        token=token,
        actor_group_membership=membership,
        account=account,
        client_remote_ip="203.0.113.7",
        client_user_agent=CLIENT_UA,
        gateway_remote_ip="203.0.113.1",
        expires_at=timezone.now() + timedelta(hours=1),
    )
