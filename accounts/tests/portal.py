"""Shared setup for the portal sign-in tests (view tests and Playwright): the §8 fixture account
"Acme" (slug `acme`) with an email provider and an admin `admin@acme.test`, optional userpass
identities, and session injection."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail

from accounts.auth import Context
from accounts.models import Account, Actor, AuthIdentity, AuthProvider
from accounts.services.identities import hash_password
from accounts.services.sign_in import session_token_create
from accounts.tests.factories import AccountFactory, ActorFactory, IdentityFactory, ProviderFactory
from firezone.web.session import SESSIONS_KEY

UA = "Mozilla/5.0 (X11; Linux x86_64) PortalTest/1.0"
ADMIN_EMAIL = "admin@acme.test"
PASSWORD = "Firezone1234"
CODE_RE = re.compile(r"Copy and paste the following token into the Sign In form\s+(\S+)")
LINK_RE = re.compile(r"(https?://\S+/verify_sign_in_token\?\S+)")


@dataclass
class Acme:
    account: Account
    email_provider: AuthProvider
    admin: Actor
    admin_identity: AuthIdentity
    userpass_provider: AuthProvider | None = None
    admin_userpass: AuthIdentity | None = None


def make_acme(*, userpass: bool = False, **account_fields: Any) -> Acme:
    account = AccountFactory(name="Acme", slug="acme", **account_fields)
    email_provider = ProviderFactory(account=account, name="Email")
    admin = ActorFactory(account=account, admin=True, name="Admin")
    identity = IdentityFactory(
        actor=admin, account=account, provider=email_provider, provider_identifier=ADMIN_EMAIL
    )
    acme = Acme(account, email_provider, admin, identity)
    if userpass:
        acme.userpass_provider = ProviderFactory(account=account, userpass=True)
        acme.admin_userpass = userpass_identity(acme, admin, "admin")
    return acme


def userpass_identity(acme: Acme, actor: Actor, username: str) -> AuthIdentity:
    assert acme.userpass_provider is not None
    return IdentityFactory(
        actor=actor,
        account=acme.account,
        provider=acme.userpass_provider,
        provider_identifier=username,
        provider_state={"password_hash": hash_password(PASSWORD)},
    )


def browser_token(identity: AuthIdentity, user_agent: str = UA) -> str:
    context = Context(type="browser", user_agent=user_agent, remote_ip="127.0.0.1")
    return session_token_create(identity=identity, context=context).encoded


def inject_session(client: Any, identity: AuthIdentity, user_agent: str = UA) -> str:
    """Store a browser session for `identity` in a Django test client; returns the token."""
    encoded = browser_token(identity, user_agent)
    session = client.session
    entries = [e for e in session.get(SESSIONS_KEY, []) if e[1] != str(identity.account_id)]
    session[SESSIONS_KEY] = [*entries, ["browser", str(identity.account_id), encoded]]
    session.save()
    return encoded


def session_cookie_for(identity: AuthIdentity, user_agent: str) -> tuple[str, str]:
    """A new server-side session holding a browser token: (cookie name, session key)."""
    store = SessionStore()
    store[SESSIONS_KEY] = [
        ["browser", str(identity.account_id), browser_token(identity, user_agent)]
    ]
    store.save()
    assert store.session_key is not None
    return settings.SESSION_COOKIE_NAME, store.session_key


def last_code(to: str | None = None) -> str:
    for message in reversed(mail.outbox):
        if to is None or to in message.to:
            match = CODE_RE.search(str(message.body))
            assert match, message.body
            return match.group(1)
    raise AssertionError("no sign in email")


def last_link(to: str | None = None) -> str:
    for message in reversed(mail.outbox):
        if to is None or to in message.to:
            match = LINK_RE.search(str(message.body))
            assert match, message.body
            return match.group(1)
    raise AssertionError("no sign in email")
