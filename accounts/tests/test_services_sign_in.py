"""Sign-in core (domain.md §2.6): email one-time codes, username/password, session tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.auth import Context
from accounts.models import AuthIdentity, Token
from accounts.services import sign_in
from accounts.services.identities import hash_password
from accounts.services.sign_in import (
    email_token_request,
    email_token_verify,
    session_token_create,
    userpass_verify,
)
from accounts.services.tokens import authenticate
from accounts.tests.factories import (
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
)
from firezone.errors import Unauthorized
from firezone.models import ChangeLog

pytestmark = pytest.mark.django_db

BROWSER = Context(type="browser", user_agent="Mozilla/5.0", remote_ip="198.51.100.1")
PASSWORD = "correct horse battery"


@pytest.fixture
def email_identity():
    actor = ActorFactory()
    return IdentityFactory(
        actor=actor, account=actor.account, provider=ProviderFactory(account=actor.account)
    )


@pytest.fixture
def userpass_identity():
    actor = ActorFactory()
    provider = ProviderFactory(account=actor.account, userpass=True)
    return IdentityFactory(
        actor=actor,
        account=actor.account,
        provider=provider,
        provider_identifier="jane@example.com",
        provider_state={"password_hash": hash_password(PASSWORD)},
    )


# --- email ----------------------------------------------------------------------------------------


def test_request_issues_email_token(email_identity) -> None:
    old, _, _ = email_token_request(identity=email_identity, context=BROWSER)
    token, code, fragment = email_token_request(identity=email_identity, context=BROWSER)
    assert not Token.objects.filter(pk=old.pk).exists()  # earlier codes stop working
    assert len(code) == 5 and code == code.lower()
    assert fragment.startswith(".SFMyNTY.")
    assert token.type == "email" and token.remaining_attempts == 3
    assert token.created_by_user_agent == "Mozilla/5.0"
    assert token.expires_at is not None
    remaining = token.expires_at - timezone.now()
    assert timedelta(minutes=9) < remaining <= timedelta(minutes=10)
    email_identity.refresh_from_db()
    state = email_identity.provider_state
    assert state["last_created_token_id"] == str(token.pk)
    assert state["request_sequence_number"] == 2
    assert state["code_hash"].startswith("$argon2id$") and code not in state["code_hash"]


def test_verify_success_resets_state_and_deletes_tokens(email_identity) -> None:
    _, code, fragment = email_token_request(identity=email_identity, context=BROWSER)
    identity = email_token_verify(
        identity=email_identity, secret=code.upper() + fragment, context=BROWSER
    )
    assert identity.pk == email_identity.pk and identity.provider_state == {}
    assert not Token.objects.filter(identity=email_identity, type="email").exists()
    with pytest.raises(Unauthorized):  # reuse refused
        email_token_verify(identity=email_identity, secret=code + fragment, context=BROWSER)
    session = session_token_create(identity=identity, context=BROWSER)
    signed_in = authenticate(session.encoded, context=BROWSER).identity
    assert signed_in is not None and signed_in.pk == identity.pk


def test_three_wrong_codes_lock_the_token(email_identity) -> None:
    token, code, fragment = email_token_request(identity=email_identity, context=BROWSER)
    wrong = "zzzzz" if code != "zzzzz" else "yyyyy"
    for _ in range(3):
        with pytest.raises(Unauthorized):
            email_token_verify(identity=email_identity, secret=wrong + fragment, context=BROWSER)
    with pytest.raises(Unauthorized):
        email_token_verify(identity=email_identity, secret=code + fragment, context=BROWSER)
    token.refresh_from_db()
    assert token.remaining_attempts == 0


def test_expired_code_is_refused(email_identity) -> None:
    token, code, fragment = email_token_request(identity=email_identity, context=BROWSER)
    Token.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(Unauthorized):
        email_token_verify(identity=email_identity, secret=code + fragment, context=BROWSER)


def test_code_of_another_identity_is_refused(email_identity) -> None:
    other = IdentityFactory(
        actor=ActorFactory(account=email_identity.account),
        account=email_identity.account,
        provider=email_identity.provider,
    )
    _, code, fragment = email_token_request(identity=other, context=BROWSER)
    with pytest.raises(Unauthorized):
        email_token_verify(identity=email_identity, secret=code + fragment, context=BROWSER)
    with pytest.raises(Unauthorized):
        email_token_verify(identity=email_identity, secret="garbage", context=BROWSER)


def test_disabled_actor_or_provider_cannot_request_or_verify(email_identity) -> None:
    _, code, fragment = email_token_request(identity=email_identity, context=BROWSER)
    actor = email_identity.actor
    actor.disabled_at = timezone.now()
    actor.save()
    with pytest.raises(Unauthorized):
        email_token_verify(identity=email_identity, secret=code + fragment, context=BROWSER)
    with pytest.raises(Unauthorized):
        email_token_request(identity=email_identity, context=BROWSER)


@pytest.mark.django_db(transaction=True)
def test_failed_attempt_is_committed() -> None:
    actor = ActorFactory()
    identity = IdentityFactory(
        actor=actor, account=actor.account, provider=ProviderFactory(account=actor.account)
    )
    token, _code, fragment = email_token_request(identity=identity, context=BROWSER)
    with pytest.raises(Unauthorized):
        email_token_verify(identity=identity, secret="wrong" + fragment, context=BROWSER)
    token.refresh_from_db()
    assert token.remaining_attempts == 2


def test_wrong_code_is_refused_by_argon2_before_the_token_is_used(
    email_identity, monkeypatch
) -> None:
    token, code, fragment = email_token_request(identity=email_identity, context=BROWSER)
    used = []
    monkeypatch.setattr(sign_in, "token_use", lambda *a, **k: used.append(a))
    wrong = "zzzzz" if code != "zzzzz" else "yyyyy"
    with pytest.raises(Unauthorized):
        email_token_verify(identity=email_identity, secret=wrong + fragment, context=BROWSER)
    assert used == []  # refused by the argon2 check
    token.refresh_from_db()
    assert token.remaining_attempts == 2  # and still counted


def test_both_code_hashes_must_match(email_identity) -> None:
    token, code, fragment = email_token_request(identity=email_identity, context=BROWSER)
    email_identity.refresh_from_db()
    state = dict(email_identity.provider_state, code_hash=hash_password("other"))
    AuthIdentity.objects.filter(pk=email_identity.pk).update(provider_state=state)
    email_identity.refresh_from_db()
    with pytest.raises(Unauthorized):
        email_token_verify(identity=email_identity, secret=code + fragment, context=BROWSER)
    token.refresh_from_db()
    assert token.remaining_attempts == 2


def test_unknown_email_verification_costs_an_argon2_check(monkeypatch) -> None:
    checks: list[str] = []
    real = sign_in._password_matches

    def spy(h: Any, p: str) -> bool:
        checks.append(p)
        return real(h, p)

    monkeypatch.setattr(sign_in, "_password_matches", spy)
    with pytest.raises(Unauthorized):
        sign_in.email_token_verify_unknown(secret="ABCDE.whatever")
    assert checks == ["abcde"]


# --- userpass -------------------------------------------------------------------------------------


def test_userpass_verify(userpass_identity) -> None:
    provider = userpass_identity.provider
    found = userpass_verify(provider=provider, identifier="JANE@example.com", password=PASSWORD)
    assert found.pk == userpass_identity.pk
    by_id = userpass_verify(provider=provider, identifier=str(found.pk), password=PASSWORD)
    assert by_id.pk == found.pk
    for identifier, password in [
        ("jane@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("", PASSWORD),
    ]:
        with pytest.raises(Unauthorized):
            userpass_verify(provider=provider, identifier=identifier, password=password)


def test_userpass_unknown_identifier_still_hashes(userpass_identity, monkeypatch) -> None:
    from accounts.services import sign_in

    calls: list[Any] = []
    real = sign_in._password_matches

    def spy(h: Any, p: str) -> bool:
        calls.append(h)
        return real(h, p)

    monkeypatch.setattr(sign_in, "_password_matches", spy)
    with pytest.raises(Unauthorized):
        userpass_verify(
            provider=userpass_identity.provider, identifier="ghost@example.com", password="x" * 12
        )
    assert len(calls) == 1


def test_userpass_refuses_disabled_actor_and_provider(userpass_identity) -> None:
    provider = userpass_identity.provider
    actor = userpass_identity.actor
    actor.disabled_at = timezone.now()
    actor.save()
    with pytest.raises(Unauthorized):
        userpass_verify(provider=provider, identifier="jane@example.com", password=PASSWORD)
    actor.disabled_at = None
    actor.save()
    provider.disabled_at = timezone.now()
    provider.save()
    with pytest.raises(Unauthorized):
        userpass_verify(provider=provider, identifier="jane@example.com", password=PASSWORD)
    email = ProviderFactory(account=provider.account)
    with pytest.raises(Unauthorized):  # the identity is not at this provider
        userpass_verify(provider=email, identifier="jane@example.com", password=PASSWORD)


# --- session tokens -------------------------------------------------------------------------------


def test_session_token_lifetimes(userpass_identity) -> None:
    now = timezone.now()
    browser = session_token_create(identity=userpass_identity, context=BROWSER).token
    assert browser.expires_at is not None
    assert timedelta(hours=10) <= browser.expires_at - now < timedelta(hours=10, minutes=1)
    assert browser.created_by == "identity"
    idp_expiry = now + timedelta(hours=1)
    capped = session_token_create(
        identity=userpass_identity, context=BROWSER, idp_expires_at=idp_expiry
    ).token
    assert capped.expires_at == idp_expiry
    client_ctx = Context(type="client", user_agent="Firezone/1.0")
    issued = session_token_create(
        identity=userpass_identity, context=client_ctx, nonce="n", idp_expires_at=idp_expiry
    )
    assert issued.token.type == "client"
    assert issued.token.expires_at is not None
    assert issued.token.expires_at - now > timedelta(days=6, hours=23)  # IdP expiry ignored
    assert issued.encoded.startswith("n.SFMyNTY.")
    subject = authenticate(issued.encoded, context=client_ctx)
    assert subject.identity is not None and subject.identity.pk == userpass_identity.pk
    assert ChangeLog.objects.filter(table="tokens", op="insert").count() == 3


def test_session_token_refuses_other_contexts_and_inactive(userpass_identity) -> None:
    with pytest.raises(Unauthorized):
        session_token_create(identity=userpass_identity, context=Context(type="email"))
    provider = userpass_identity.provider
    provider.disabled_at = timezone.now()
    provider.save()
    with pytest.raises(Unauthorized):
        session_token_create(identity=userpass_identity, context=BROWSER)
