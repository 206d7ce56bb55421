"""Shared fixtures and helpers of the actor page tests (test_views_actors_*.py): an admin of
`acme` signed in with the Django test client, actors, tokens and the billing limits.

Import the fixtures a module needs under their `*_fixture` names (they are registered under the
plain names): `from accounts.tests._actors import acme_fixture, client_fixture  # noqa: F401`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Actor, Token
from accounts.services.tokens_admin import service_account_token_create
from accounts.tests.factories import (
    ActorFactory,
    IdentityFactory,
    subject_for,
)
from accounts.tests.portal import UA, Acme, inject_session, make_acme

SEATS = "You have reached the maximum number of seats allowed by your subscription plan."

SERVICE_ACCOUNTS = (
    "You have reached the maximum number of service accounts allowed by your subscription plan."
)


@pytest.fixture(name="acme")
def acme_fixture() -> Acme:
    return make_acme()


@pytest.fixture(name="client")
def client_fixture(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _text(response: Any) -> str:
    return response.content.decode()


def _user(acme: Acme, name: str = "Jane", *, admin: bool = False, email: str = "") -> Actor:
    actor = ActorFactory(account=acme.account, name=name, admin=admin)
    IdentityFactory(
        actor=actor,
        account=acme.account,
        provider=acme.email_provider,
        provider_identifier=email or f"{name.lower()}@acme.test",
    )
    return actor


def _service_account(acme: Acme, name: str = "Backend") -> Actor:
    return ActorFactory(account=acme.account, name=name, service_account=True)


def _sa_token(acme: Acme, actor: Actor, name: str = "ci") -> Token:
    subject = subject_for(acme.admin, identity=acme.admin_identity)
    issued = service_account_token_create(subject=subject, actor=actor, name=name)
    return Token.objects.get(pk=issued.token.pk)


def _client_token(actor: Actor) -> Token:
    return Token.objects.create(
        type="client",
        actor=actor,
        identity=actor.identities.first(),
        account=actor.account,
        secret_salt="salt",
        secret_hash="hash",
        created_by="system",
        expires_at=timezone.now() + timedelta(days=7),
    )
