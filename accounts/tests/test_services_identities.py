"""Identity services and selectors (domain.md §2.5)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from accounts.models import AuthIdentity, Token
from accounts.selectors.identities import (
    identities_count_by_provider,
    identity_get,
    identity_list_for_actor,
)
from accounts.services.identities import (
    identity_create,
    identity_create_system,
    identity_delete,
)
from accounts.services.tokens import token_create
from accounts.tests.factories import (
    ACTOR_TYPES,
    AccountFactory,
    ActorFactory,
    IdentityFactory,
    ProviderFactory,
    subject_of_type,
)
from firezone.errors import NotFound, Refused, Unauthorized, ValidationFailed
from firezone.models import ChangeLog

pytestmark = pytest.mark.django_db

ADMIN, API, USER, SA = ACTOR_TYPES
PASSWORD = "correct horse battery"


@pytest.fixture
def setup():
    account = AccountFactory()
    subject = subject_of_type(account, API)
    return {
        "subject": subject,
        "account": account,
        "actor": ActorFactory(account=account),
        "email": ProviderFactory(account=account),
        "userpass": ProviderFactory(account=account, userpass=True),
        "oidc": ProviderFactory(account=account, oidc=True),
    }


def _rows():
    return (AuthIdentity.objects.count(), ChangeLog.objects.count())


def test_create_email_identity(setup, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        identity = identity_create(
            subject=setup["subject"],
            actor=setup["actor"],
            provider=setup["email"],
            provider_identifier=" Jane@Example.com ",
            provider_identifier_confirmation="jane@example.com",
        )
    assert identity.provider_identifier == "Jane@Example.com"
    assert identity.email == "Jane@Example.com"
    assert identity.provider_state == {}
    assert identity.created_by == "actor"
    assert ChangeLog.objects.get(table="auth_identities").op == "insert"
    assert len(callbacks) == 1


def test_create_userpass_identity_hashes_with_argon2id(setup) -> None:
    identity = identity_create(
        subject=setup["subject"],
        actor=setup["actor"],
        provider=setup["userpass"],
        provider_identifier="jane@example.com",
        password=PASSWORD,
        password_confirmation=PASSWORD,
    )
    password_hash = identity.provider_state["password_hash"]
    assert password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(password_hash, PASSWORD)
    assert PASSWORD not in str(ChangeLog.objects.get(table="auth_identities").data)


def test_create_oidc_identity_email_from_identifier(setup) -> None:
    by_email = identity_create(
        subject=setup["subject"],
        actor=setup["actor"],
        provider=setup["oidc"],
        provider_identifier="jane@example.com",
    )
    assert by_email.email == "jane@example.com"
    by_sub = identity_create(
        subject=setup["subject"],
        actor=setup["actor"],
        provider=setup["oidc"],
        provider_identifier="1234567890",
    )
    assert by_sub.email is None


@pytest.mark.parametrize(
    ("provider", "kwargs", "field", "message"),
    [
        ("email", {"provider_identifier": "not-an-email"}, "provider_identifier", None),
        (
            "email",
            {"provider_identifier": "a@b.co", "provider_identifier_confirmation": "x@b.co"},
            "provider_identifier_confirmation",
            "email does not match",
        ),
        (
            "email",
            {"provider_identifier": "a@b.co"},
            "provider_identifier_confirmation",
            "can't be blank",
        ),
        (
            "email",
            {
                "provider_identifier": "a" * 150 + "@example.com",
                "provider_identifier_confirmation": "a" * 150 + "@example.com",
            },
            "provider_identifier",
            "is an invalid email address",
        ),
        (
            "userpass",
            {
                "provider_identifier": "a@b.co",
                "password": "short",
                "password_confirmation": "short",
            },
            "password",
            "should be at least 12 byte(s)",
        ),
        (
            "userpass",
            # 25 three-byte characters: 25 characters but 75 bytes.
            {
                "provider_identifier": "a@b.co",
                "password": "€" * 25,
                "password_confirmation": "€" * 25,
            },
            "password",
            "should be at most 72 byte(s)",
        ),
        (
            "userpass",
            {
                "provider_identifier": "a@b.co",
                "password": PASSWORD,
                "password_confirmation": "nope",
            },
            "password_confirmation",
            "does not match confirmation",
        ),
        ("userpass", {"provider_identifier": "a@b.co"}, "password", "can't be blank"),
        ("oidc", {"provider_identifier": "  "}, "provider_identifier", "can't be blank"),
        (
            "oidc",
            {"provider_identifier": "sub", "email": "bad email"},
            "email",
            "is an invalid email address",
        ),
        (
            "oidc",
            {"provider_identifier": "TAKEN@x.com"},
            "provider_identifier",
            "has already been taken",
        ),
    ],
)
def test_create_bad_input_writes_nothing(setup, provider, kwargs, field, message) -> None:
    IdentityFactory(actor=setup["actor"], provider=setup["oidc"], provider_identifier="taken@x.com")
    before = _rows()
    with pytest.raises(ValidationFailed) as exc:
        identity_create(
            subject=setup["subject"], actor=setup["actor"], provider=setup[provider], **kwargs
        )
    assert field in exc.value.errors
    if message:
        assert exc.value.errors[field] == [message]
    assert _rows() == before


def test_create_tenant_isolation_and_permissions(setup) -> None:
    subject = setup["subject"]
    with pytest.raises(NotFound):
        identity_create(
            subject=subject, actor=ActorFactory(), provider=setup["oidc"], provider_identifier="x"
        )
    with pytest.raises(NotFound):
        identity_create(
            subject=subject,
            actor=setup["actor"],
            provider=ProviderFactory(oidc=True),
            provider_identifier="x",
        )
    for actor_type in (USER, SA):
        other = subject_of_type(setup["account"], actor_type)
        with pytest.raises(Unauthorized):
            identity_create(
                subject=other, actor=setup["actor"], provider=setup["oidc"], provider_identifier="y"
            )


def test_system_create_confirmation_optional_and_provider_trail(setup) -> None:
    identity = identity_create_system(
        actor=setup["actor"], provider=setup["email"], provider_identifier="a@example.com"
    )
    assert identity.created_by == "system"
    synced = identity_create_system(
        actor=setup["actor"],
        provider=setup["oidc"],
        provider_identifier="sub-1",
        provider_state={"userinfo": {"email": "a@example.com"}},
        by_provider=True,
    )
    assert synced.created_by == "provider"
    assert synced.provider_state == {"userinfo": {"email": "a@example.com"}}
    with pytest.raises(NotFound):
        identity_create_system(
            actor=ActorFactory(), provider=setup["email"], provider_identifier="b@example.com"
        )


@pytest.mark.parametrize("actor_type", ACTOR_TYPES)
def test_delete_own_vs_others(actor_type) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, actor_type)
    provider = ProviderFactory(account=account, oidc=True)
    own = IdentityFactory(actor=subject.actor, account=account, provider=provider)
    other = IdentityFactory(account=account, actor=ActorFactory(account=account), provider=provider)
    may_own = actor_type in (ADMIN, API, USER)
    may_others = actor_type in (ADMIN, API)
    for identity, allowed in ((own, may_own), (other, may_others)):
        if allowed:
            identity_delete(subject=subject, identity=identity)
            assert not AuthIdentity.objects.filter(pk=identity.pk).exists()
        else:
            with pytest.raises(Unauthorized):
                identity_delete(subject=subject, identity=identity)


def test_delete_cascades_tokens_refuses_synced_and_foreign(
    setup, django_capture_on_commit_callbacks
) -> None:
    subject = setup["subject"]
    identity = IdentityFactory(actor=setup["actor"], provider=setup["oidc"])
    issued = token_create(
        type="browser", account=setup["account"], actor=setup["actor"], identity=identity
    )
    with django_capture_on_commit_callbacks() as callbacks:
        identity_delete(subject=subject, identity=identity)
    assert not Token.objects.filter(pk=issued.token.pk).exists()
    ops = [(e.table, e.op) for e in ChangeLog.objects.order_by("lsn")]
    assert ops[-2:] == [("tokens", "delete"), ("auth_identities", "delete")]
    assert len(callbacks) == 2  # session disconnect + identity delete
    synced = IdentityFactory(actor=setup["actor"], provider=setup["oidc"], created_by="provider")
    with pytest.raises(Refused) as exc:
        identity_delete(subject=subject, identity=synced)
    assert exc.value.code == "cant_delete_synced_identity"
    with pytest.raises(NotFound):
        identity_delete(subject=subject, identity=IdentityFactory())
    assert AuthIdentity.objects.filter(pk=synced.pk).exists()


def test_selectors_scope_own_vs_manage(setup) -> None:
    account = setup["account"]
    user_subject = subject_of_type(account, USER)
    own = user_subject.identity
    assert own is not None
    other = IdentityFactory(actor=setup["actor"], provider=setup["oidc"])
    foreign = IdentityFactory()
    admin = setup["subject"]
    assert identity_get(admin, identity_id=other.pk) == other
    assert identity_get(user_subject, identity_id=own.pk) == own
    with pytest.raises(NotFound):
        identity_get(user_subject, identity_id=other.pk)
    with pytest.raises(NotFound):
        identity_get(admin, identity_id=foreign.pk)
    assert list(identity_list_for_actor(admin, actor=setup["actor"])) == [other]
    assert list(identity_list_for_actor(user_subject, actor=setup["actor"])) == []
    assert list(identity_list_for_actor(user_subject, actor=user_subject.actor)) == [own]
    counts = identities_count_by_provider(admin)
    assert counts[setup["oidc"].pk] == 1
    with pytest.raises(Unauthorized):
        identity_get(subject_of_type(account, SA), identity_id=own.pk)
