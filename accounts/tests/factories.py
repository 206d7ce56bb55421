"""factory_boy factories for the accounts app, and `subject_for` to act as an actor in tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import factory
from django.db import models

from accounts.auth import Context, Subject
from accounts.models import (
    Account,
    Actor,
    ActorGroup,
    ActorGroupMembership,
    AuthIdentity,
    AuthProvider,
)

ALL_FEATURES = {name: True for name in Account.FEATURES}

M = TypeVar("M", bound=models.Model)


class ModelFactory(factory.django.DjangoModelFactory[M]):
    """A Django model factory whose call is typed as returning the model: `SiteFactory()` is a
    `Site`, as `SiteFactory.create()` is."""

    class Meta:
        abstract = True

    if TYPE_CHECKING:
        # factory_boy's metaclass `__call__` returns `create(**kwargs)`; mypy reads `__new__`.
        def __new__(cls, **kwargs: Any) -> M: ...  # type: ignore[misc]  # not a class instance: the model


class AccountFactory(ModelFactory[Account]):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    legal_name = factory.LazyAttribute(lambda o: o.name)
    slug = factory.Sequence(lambda n: f"account_{n}")
    features = factory.LazyFunction(lambda: dict(ALL_FEATURES))
    config = factory.LazyFunction(
        lambda: {"notifications": {"outdated_gateway": {"enabled": True}}}
    )


class ActorFactory(ModelFactory[Actor]):
    class Meta:
        model = Actor

    account = factory.SubFactory(AccountFactory)
    type = Actor.Type.ACCOUNT_USER
    name = factory.Sequence(lambda n: f"Actor {n}")

    class Params:
        admin = factory.Trait(type=Actor.Type.ACCOUNT_ADMIN_USER)
        service_account = factory.Trait(type=Actor.Type.SERVICE_ACCOUNT)
        api_client = factory.Trait(type=Actor.Type.API_CLIENT)


class ProviderFactory(ModelFactory[AuthProvider]):
    class Meta:
        model = AuthProvider

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Provider {n}")
    adapter = AuthProvider.Adapter.EMAIL
    provisioner = AuthProvider.Provisioner.MANUAL
    created_by = "system"

    class Params:
        userpass = factory.Trait(adapter=AuthProvider.Adapter.USERPASS, name="UserPass")
        oidc = factory.Trait(
            adapter=AuthProvider.Adapter.OPENID_CONNECT,
            provisioner=AuthProvider.Provisioner.MANUAL,
            adapter_config=factory.Sequence(
                lambda n: {
                    "client_id": f"client-{n}",
                    "client_secret": "secret",
                    "response_type": "code",
                    "scope": "openid email profile",
                    "discovery_document_uri": "https://idp.example.com/.well-known/openid-configuration",
                }
            ),
        )


class IdentityFactory(ModelFactory[AuthIdentity]):
    class Meta:
        model = AuthIdentity

    actor = factory.SubFactory(ActorFactory)
    account = factory.SelfAttribute("actor.account")
    provider = factory.SubFactory(ProviderFactory, account=factory.SelfAttribute("..account"))
    provider_identifier = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.LazyAttribute(lambda o: o.provider_identifier)
    created_by = "system"


class GroupFactory(ModelFactory[ActorGroup]):
    class Meta:
        model = ActorGroup

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Group {n}")
    type = ActorGroup.Type.STATIC
    created_by = "system"


class MembershipFactory(ModelFactory[ActorGroupMembership]):
    class Meta:
        model = ActorGroupMembership

    group = factory.SubFactory(GroupFactory)
    account = factory.SelfAttribute("group.account")
    actor = factory.SubFactory(ActorFactory, account=factory.SelfAttribute("..account"))


def subject_for(actor: Actor, *, identity: AuthIdentity | None = None, **kwargs: Any) -> Subject:
    """A subject acting as `actor`; users get an identity (created if not given)."""
    if identity is None and actor.type in Actor.USER_TYPES:
        identity = actor.identities.first() or IdentityFactory(actor=actor, account=actor.account)
    kwargs.setdefault("context", Context(remote_ip="100.64.0.1", user_agent="test/1.0"))
    return Subject.build(actor=actor, identity=identity, **kwargs)


def admin_subject(account: Account | None = None, **kwargs: Any) -> Subject:
    account = account or AccountFactory()
    return subject_for(ActorFactory(account=account, admin=True), **kwargs)


# --- helpers for the service and selector tests -----------------------------------------------

ACTOR_TYPES = ("account_admin_user", "api_client", "account_user", "service_account")


def subject_of_type(account: Account, actor_type: str, **kwargs: Any) -> Subject:
    """A subject acting as a new actor of `actor_type` in `account`; users get an identity at
    the account's email provider (one per account, so several subjects may share it)."""
    actor = ActorFactory(account=account, type=actor_type)
    if actor.type in Actor.USER_TYPES and "identity" not in kwargs:
        provider = AuthProvider.objects.filter(
            account=account, adapter=AuthProvider.Adapter.EMAIL
        ).first() or ProviderFactory(account=account)
        kwargs["identity"] = IdentityFactory(actor=actor, account=account, provider=provider)
    return subject_for(actor, **kwargs)


def everyone_group(account: Account) -> ActorGroup:
    """The account's managed "Everyone" group (created directly, without recomputing)."""
    return GroupFactory(account=account, name="Everyone", type=ActorGroup.Type.MANAGED)


def synced_group(account: Account, **kwargs: Any) -> ActorGroup:
    """A group owned by directory sync of a new OIDC provider."""
    provider = kwargs.pop("provider", None) or ProviderFactory(account=account, oidc=True)
    return GroupFactory(
        account=account,
        provider=provider,
        provider_identifier=factory.Sequence(lambda n: f"G:{n}"),
        created_by="provider",
        **kwargs,
    )
