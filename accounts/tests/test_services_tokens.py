"""Token management (tokens_admin, token selectors) and token use/authentication
(accounts/services/tokens.py), domain.md §2.7."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import tokens
from accounts.auth import Context
from accounts.models import Token
from accounts.selectors.tokens import token_get, tokens_list_for_actor
from accounts.services.tokens import authenticate, token_create, token_use
from accounts.services.tokens_admin import (
    api_client_token_create,
    service_account_token_create,
    token_delete,
    token_delete_for_subject,
    tokens_delete_for_actor,
)
from accounts.tests.factories import (
    ACTOR_TYPES,
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
    subject_of_type,
)
from firezone.errors import NotFound, Unauthorized, ValidationFailed
from firezone.models import ChangeLog

pytestmark = pytest.mark.django_db

ADMIN, API, USER, SA = ACTOR_TYPES
UA = "Mozilla/5.0 test"


def _future(**kw) -> datetime:
    return timezone.now() + timedelta(**kw)


# --- admin-issued tokens --------------------------------------------------------------------------


def test_service_account_token(django_capture_on_commit_callbacks) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    robot = ActorFactory(account=account, type=SA)
    with django_capture_on_commit_callbacks() as callbacks:
        issued = service_account_token_create(subject=subject, actor=robot, name=" ci ")
    token = issued.token
    assert (token.type, token.actor_id, token.identity_id) == ("client", robot.pk, None)
    assert token.name == "ci"
    assert token.expires_at == tokens.default_expiry("client", timezone.now(), service_account=True)
    assert issued.encoded.startswith(".SFMyNTY.")
    assert ChangeLog.objects.get(table="tokens").op == "insert"
    assert callbacks
    # The token authenticates the service account on the client socket.
    authenticated = authenticate(issued.encoded, context=Context(type="client"))
    assert authenticated.actor_id == robot.pk and authenticated.identity is None


def test_api_client_token_with_expiry() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    api = ActorFactory(account=account, type=API)
    when = _future(days=3)
    issued = api_client_token_create(subject=subject, actor=api, name="ci", expires_at=when)
    assert issued.token.type == "api_client" and issued.token.expires_at == when
    assert authenticate(issued.encoded, context=Context(type="api_client")).actor_id == api.pk


@pytest.mark.parametrize("actor_type", ACTOR_TYPES)
def test_issuing_permissions(actor_type) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, actor_type)
    robot = ActorFactory(account=account, type=SA)
    api = ActorFactory(account=account, type=API)
    if actor_type in (ADMIN, API):
        service_account_token_create(subject=subject, actor=robot)
    else:
        with pytest.raises(Unauthorized):
            service_account_token_create(subject=subject, actor=robot)
    if actor_type == ADMIN:
        api_client_token_create(subject=subject, actor=api)
    else:
        with pytest.raises(Unauthorized):
            api_client_token_create(subject=subject, actor=api)


def test_issuing_bad_input_writes_nothing() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    user = ActorFactory(account=account)
    robot = ActorFactory(account=account, type=SA)
    disabled = ActorFactory(account=account, type=SA, disabled_at=timezone.now())
    foreign = ActorFactory(type=SA)
    before = (Token.objects.count(), ChangeLog.objects.count())
    with pytest.raises(ValidationFailed) as exc:
        service_account_token_create(subject=subject, actor=user)
    assert "actor" in exc.value.errors
    with pytest.raises(ValidationFailed):
        api_client_token_create(subject=subject, actor=robot)
    with pytest.raises(ValidationFailed):
        service_account_token_create(subject=subject, actor=disabled)
    with pytest.raises(ValidationFailed) as exc:
        service_account_token_create(
            subject=subject, actor=robot, expires_at=timezone.now() - timedelta(minutes=1)
        )
    assert exc.value.errors == {"expires_at": ["must be in the future"]}
    with pytest.raises(NotFound):
        service_account_token_create(subject=subject, actor=foreign)
    assert (Token.objects.count(), ChangeLog.objects.count()) == before


# --- update / delete ------------------------------------------------------------------------------


def _session(actor, **kw) -> Token:
    identity = kw.pop("identity", None) or IdentityFactory(
        actor=actor,
        account=actor.account,
        provider=ProviderFactory(account=actor.account, oidc=True),
    )
    return token_create(
        type="browser",
        account=actor.account,
        actor=actor,
        identity=identity,
        expires_at=kw.pop("expires_at", _future(hours=1)),
        context=Context(user_agent=UA),
    ).token


@pytest.mark.parametrize("actor_type", ACTOR_TYPES)
def test_delete_own_vs_others(actor_type) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, actor_type)
    other = ActorFactory(account=account)
    own = token_create(type="client", account=account, actor=subject.actor).token
    others = _session(other)
    may_own = actor_type in (ADMIN, API, USER)
    may_others = actor_type in (ADMIN, API)
    for token, allowed in ((own, may_own), (others, may_others)):
        if allowed:
            token_delete(subject=subject, token=token)
            assert not Token.objects.filter(pk=token.pk).exists()
        else:
            with pytest.raises(Unauthorized):
                token_delete(subject=subject, token=token)


def test_delete_disconnects_and_is_tenant_scoped(django_capture_on_commit_callbacks) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from firezone import changes

    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    token = _session(ActorFactory(account=account))
    with django_capture_on_commit_callbacks() as callbacks:
        token_delete(subject=subject, token=token)
    entry = ChangeLog.objects.get(table="tokens", op="delete")
    assert entry.old_data is not None
    assert entry.old_data["id"] == str(token.pk)
    assert len(callbacks) == 1  # the session disconnect, sent after commit
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(changes.session_group(token.pk), channel)
    callbacks[0]()
    assert async_to_sync(layer.receive)(channel) == {"type": "session.disconnect"}
    with pytest.raises(NotFound):
        token_delete(subject=subject, token=_session(ActorFactory()))


def test_bulk_deletes_and_sign_out() -> None:
    account = AccountFactory()
    subject = subject_of_type(account, ADMIN)
    actor = ActorFactory(account=account)
    identity = IdentityFactory(
        actor=actor, account=account, provider=ProviderFactory(account=account, oidc=True)
    )
    a, b = _session(actor, identity=identity), _session(actor, identity=identity)
    c = _session(actor)
    assert tokens_delete_for_actor(subject=subject, actor=actor) == 3
    assert not Token.objects.filter(pk__in=[a.pk, b.pk, c.pk]).exists()
    with pytest.raises(NotFound):
        tokens_delete_for_actor(subject=subject, actor=ActorFactory())
    user = subject_of_type(account, USER)
    with pytest.raises(Unauthorized):
        tokens_delete_for_actor(subject=user, actor=actor)
    # Sign-out deletes the subject's own token.
    own = _session(user.actor, identity=user.identity)
    signed_in = authenticate_browser(own, user)
    assert token_delete_for_subject(subject=signed_in) == 1
    assert not Token.objects.filter(pk=own.pk).exists()
    assert token_delete_for_subject(subject=signed_in) == 0


def authenticate_browser(token: Token, subject):
    from dataclasses import replace

    return replace(subject, token_id=token.pk)


# --- selectors ------------------------------------------------------------------------------------


def test_selectors_scope_and_order() -> None:
    account = AccountFactory()
    admin = subject_of_type(account, ADMIN)
    user = subject_of_type(account, USER)
    older = token_create(type="client", account=account, actor=user.actor).token
    Token.objects.filter(pk=older.pk).update(inserted_at=timezone.now() - timedelta(days=1))
    newer = token_create(type="client", account=account, actor=user.actor).token
    expired = _session(user.actor, identity=user.identity)
    Token.objects.filter(pk=expired.pk).update(expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    admins = token_create(type="client", account=account, actor=admin.actor).token
    foreign = token_create(type="client", account=AccountFactory(), actor=ActorFactory()).token

    assert [t.pk for t in tokens_list_for_actor(admin, actor=user.actor)][-1] == older.pk
    assert token_get(admin, token_id=expired.pk) == expired  # expired included
    assert token_get(user, token_id=newer.pk) == newer
    with pytest.raises(NotFound):
        token_get(user, token_id=admins.pk)
    with pytest.raises(NotFound):
        token_get(admin, token_id=foreign.pk)
    with pytest.raises(Unauthorized):
        tokens_list_for_actor(user, actor=user.actor)
    with pytest.raises(NotFound):
        tokens_list_for_actor(admin, actor=foreign.actor)


# --- token_use / authenticate ---------------------------------------------------------------------


def _email_token(actor=None):
    actor = actor or ActorFactory()
    identity = IdentityFactory(actor=actor, account=actor.account)
    issued = token_create(
        type="email",
        account=actor.account,
        actor=actor,
        identity=identity,
        nonce="abcde",
        expires_at=_future(minutes=15),
    )
    return issued


def test_token_use_counts_attempts_and_locks() -> None:
    issued = _email_token()
    wrong = "zzzzz" + issued.encoded[len("abcde") :]
    ctx = Context(type="email")
    for _ in range(tokens.EMAIL_TOKEN_ATTEMPTS - 1):
        with pytest.raises(Unauthorized):
            token_use(wrong, context=ctx)
    issued.token.refresh_from_db()
    assert issued.token.remaining_attempts == 1
    assert token_use(issued.encoded, context=ctx).pk == issued.token.pk  # last: right code
    with pytest.raises(Unauthorized):
        token_use(issued.encoded, context=ctx)  # attempts used up


def test_token_use_refuses_expired_and_wrong_type() -> None:
    actor = ActorFactory(type=API)
    issued = token_create(
        type="api_client", account=actor.account, actor=actor, expires_at=_future(hours=1)
    )
    with pytest.raises(Unauthorized):
        token_use(issued.encoded, context=Context(type="client"))
    token = token_use(issued.encoded, context=Context(type="api_client", remote_ip="10.0.0.1"))
    assert token.last_seen_at is not None and token.last_seen_remote_ip == "10.0.0.1"
    # (database now() is the transaction start: use a time clearly in the past)
    Token.objects.filter(pk=issued.token.pk).update(expires_at=_future(seconds=-5))
    with pytest.raises(Unauthorized) as exc:
        token_use(issued.encoded, context=Context(type="api_client"))
    assert exc.value.reason == "invalid_or_expired_token"
    with pytest.raises(Unauthorized):
        token_use("garbage", context=Context(type="api_client"))


def test_authenticate_browser_user_agent_and_last_seen() -> None:
    actor = ActorFactory()
    identity = IdentityFactory(actor=actor, account=actor.account)
    issued = token_create(
        type="browser",
        account=actor.account,
        actor=actor,
        identity=identity,
        expires_at=_future(hours=10),
        context=Context(user_agent=UA),
    )
    ctx = Context(type="browser", user_agent=UA, remote_ip="192.0.2.1")
    subject = authenticate(issued.encoded, context=ctx)
    assert subject.identity is not None
    assert subject.actor_id == actor.pk and subject.identity.pk == identity.pk
    assert subject.token_id == issued.token.pk and subject.expires_at == issued.token.expires_at
    identity.refresh_from_db()
    assert identity.last_seen_at is not None and identity.last_seen_remote_ip == "192.0.2.1"
    with pytest.raises(Unauthorized) as exc:
        authenticate(issued.encoded, context=Context(type="browser", user_agent="other"))
    assert exc.value.reason == "invalid_user_agent"


def test_authenticate_refuses_disabled_actor_or_provider() -> None:
    actor = ActorFactory(type=API)
    issued = token_create(type="api_client", account=actor.account, actor=actor)
    ctx = Context(type="api_client")
    assert authenticate(issued.encoded, context=ctx).actor_id == actor.pk
    actor.disabled_at = timezone.now()
    actor.save()
    with pytest.raises(Unauthorized):
        authenticate(issued.encoded, context=ctx)
    user = ActorFactory()
    identity = IdentityFactory(actor=user, account=user.account)
    client = token_create(type="client", account=user.account, actor=user, identity=identity)
    identity.provider.disabled_at = timezone.now()
    identity.provider.save()
    with pytest.raises(Unauthorized):
        authenticate(client.encoded, context=Context(type="client"))


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split()[0] for q in queries.captured_queries]


def test_token_without_attempts_costs_one_select_and_one_update() -> None:
    actor = ActorFactory(type=API)
    issued = token_create(
        type="api_client", account=actor.account, actor=actor, expires_at=_future(hours=1)
    )
    ctx = Context(type="api_client", remote_ip="10.0.0.2")
    with CaptureQueriesContext(connection) as queries:
        assert token_use(issued.encoded, context=ctx).last_seen_remote_ip == "10.0.0.2"
    assert _statements(queries) == ["SELECT", "UPDATE"]
    # A well-signed string with a wrong secret: refused after the SELECT, nothing written.
    forged = tokens.encode(
        issued.token.pk, "", "WRONG", token_type="api_client", account_id=actor.account_id
    )
    Token.objects.filter(pk=issued.token.pk).update(last_seen_remote_ip=None)
    with CaptureQueriesContext(connection) as queries, pytest.raises(Unauthorized):
        token_use(forged, context=ctx)
    assert _statements(queries) == ["SELECT"]
    assert Token.objects.get(pk=issued.token.pk).last_seen_remote_ip is None
    # Another account in the string: no row.
    other = tokens.encode(
        issued.token.pk, "", "WRONG", token_type="api_client", account_id=AccountFactory().pk
    )
    with pytest.raises(Unauthorized):
        token_use(other, context=ctx)


def test_a_row_that_counts_attempts_is_spent_before_comparing_whatever_its_type() -> None:
    actor = ActorFactory(type=API)
    issued = token_create(type="api_client", account=actor.account, actor=actor)
    Token.objects.filter(pk=issued.token.pk).update(remaining_attempts=2)
    forged = tokens.encode(
        issued.token.pk, "", "WRONG", token_type="api_client", account_id=actor.account_id
    )
    ctx = Context(type="api_client")
    with pytest.raises(Unauthorized):
        token_use(forged, context=ctx)
    assert Token.objects.get(pk=issued.token.pk).remaining_attempts == 1
    assert token_use(issued.encoded, context=ctx).remaining_attempts == 0
    with pytest.raises(Unauthorized):
        token_use(issued.encoded, context=ctx)  # the last attempt expired it


def test_authenticate_is_one_select_and_one_update_and_keeps_refusal_side_effects() -> None:
    user = ActorFactory()
    identity = IdentityFactory(actor=user, account=user.account)
    issued = token_create(type="client", account=user.account, actor=user, identity=identity)
    ctx = Context(type="client", user_agent="connlib/1.3.0", remote_ip="192.0.2.7")
    with CaptureQueriesContext(connection) as queries:
        subject = authenticate(issued.encoded, context=ctx)
        assert subject.identity is not None
        assert subject.account.pk == user.account_id and subject.identity.provider.pk
    assert _statements(queries) == ["SELECT", "WITH"]
    identity.refresh_from_db()
    issued.token.refresh_from_db()
    assert identity.last_seen_remote_ip == issued.token.last_seen_remote_ip == "192.0.2.7"
    # The identity's actor is checked, not only the token's.
    other = ActorFactory(account=user.account)
    other_identity = IdentityFactory(actor=other, account=user.account, provider=identity.provider)
    moved = token_create(type="client", account=user.account, actor=user, identity=other_identity)
    other.disabled_at = timezone.now()
    other.save()
    with pytest.raises(Unauthorized):
        authenticate(moved.encoded, context=ctx)
    # A refused subject still records the token's use (not the identity's), as before.
    moved.token.refresh_from_db()
    other_identity.refresh_from_db()
    assert moved.token.last_seen_remote_ip == "192.0.2.7"
    assert other_identity.last_seen_at is None
