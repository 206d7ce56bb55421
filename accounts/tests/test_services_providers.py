"""Identity provider services and selectors (domain.md §1.5, §2.4)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from accounts.models import AuthProvider, Token
from accounts.selectors.providers import (
    active_provider_get,
    default_provider,
    provider_get,
    provider_list,
)
from accounts.services.providers import (
    provider_assign_default,
    provider_clear_default,
    provider_connect,
    provider_create,
    provider_create_system,
    provider_delete,
    provider_disable,
    provider_enable,
    provider_update,
)
from accounts.services.tokens import token_create
from accounts.tests.factories import (
    ACTOR_TYPES,
    AccountFactory,
    GroupFactory,
    IdentityFactory,
    ProviderFactory,
    subject_of_type,
)
from firezone.errors import NotFound, Refused, Unauthorized, ValidationFailed
from firezone.models import ChangeLog

pytestmark = pytest.mark.django_db

ADMIN, API, USER, SA = ACTOR_TYPES
OIDC = {
    "client_id": " cid ",
    "client_secret": "secret",
    "discovery_document_uri": "https://idp.example.com/.well-known/openid-configuration",
}


def _rows():
    return (AuthProvider.objects.count(), ChangeLog.objects.count())


@pytest.fixture
def subject():
    # An API client: it may manage providers and comes without an identity (and provider).
    return subject_of_type(AccountFactory(), API)


def test_create_oidc_with_defaults(subject, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        provider = provider_create(
            subject=subject, name=" Okta SSO ", adapter="openid_connect", adapter_config=OIDC
        )
    assert provider.name == "Okta SSO"
    assert provider.provisioner == "manual" and provider.disabled_at is None
    assert provider.adapter_config["client_id"] == "cid"
    assert provider.adapter_config["scope"] == "openid email profile"
    assert provider.adapter_config["response_type"] == "code"
    assert provider.created_by == "actor"
    [entry] = ChangeLog.objects.filter(table="auth_providers")
    assert entry.op == "insert"
    assert len(callbacks) == 1


def test_create_sync_adapter_needs_idp_sync_and_starts_disabled(subject) -> None:
    config = {
        **OIDC,
        "okta_account_domain": "acme.okta.com",
        "api_base_url": "https://acme.okta.com",
    }
    provider = provider_create(subject=subject, name="Okta", adapter="okta", adapter_config=config)
    assert provider.provisioner == "custom"
    assert provider.disabled_at is not None
    assert provider.adapter_state == {"status": "pending_access_token"}
    assert "okta.users.read" in provider.adapter_config["scope"]
    connected = provider_connect(provider=provider, adapter_state={"access_token": "t"})
    assert connected.disabled_at is None and connected.adapter_state == {"access_token": "t"}

    account = subject.account
    account.features = {**account.features, "idp_sync": False}
    account.save()
    before = _rows()
    with pytest.raises(ValidationFailed) as exc:
        provider_create(
            subject=subject, name="Entra", adapter="microsoft_entra", adapter_config=OIDC
        )
    assert "adapter" in exc.value.errors
    assert _rows() == before


@pytest.mark.parametrize(
    ("adapter", "config", "field"),
    [
        ("openid_connect", {**OIDC, "client_id": " "}, "adapter_config.client_id"),
        ("openid_connect", {**OIDC, "client_secret": None}, "adapter_config.client_secret"),
        (
            "openid_connect",
            {**OIDC, "discovery_document_uri": "not a url"},
            "adapter_config.discovery_document_uri",
        ),
        (
            "openid_connect",
            {**OIDC, "discovery_document_uri": "http://idp.example.com/x"},
            "adapter_config.discovery_document_uri",
        ),
        ("openid_connect", {**OIDC, "scope": "email profile"}, "adapter_config.scope"),
        ("openid_connect", {**OIDC, "response_type": "token"}, "adapter_config.response_type"),
        ("google_workspace", {**OIDC}, "adapter_config.service_account_json_key"),
        ("okta", {**OIDC}, "adapter_config.okta_account_domain"),
        ("mock", {"num_actors": -1}, "adapter_config.num_actors"),
        ("userpass", {}, "adapter"),  # not offered by default
        ("token", {}, "adapter"),
    ],
)
def test_create_bad_config_writes_nothing(subject, adapter, config, field) -> None:
    before = _rows()
    with pytest.raises(ValidationFailed) as exc:
        provider_create(subject=subject, name="P", adapter=adapter, adapter_config=config)
    assert field in exc.value.errors
    assert _rows() == before


def test_create_bad_name_and_provisioner(subject) -> None:
    with pytest.raises(ValidationFailed) as exc:
        provider_create(subject=subject, name=" ", adapter="email", provisioner="custom")
    assert exc.value.errors == {"name": ["can't be blank"], "provisioner": ["is invalid"]}


@override_settings(AUTH_PROVIDER_ADAPTERS=["email", "userpass"])
def test_uniqueness_from_database_indexes(subject) -> None:
    provider_create(subject=subject, name="Email", adapter="email")
    provider_create(subject=subject, name="Pass", adapter="userpass")
    provider_create_system(
        account=subject.account, name="O", adapter="openid_connect", adapter_config=OIDC
    )
    provider_create_system(account=subject.account, name="Mock", adapter="mock")
    before = _rows()
    cases = [
        ("email", {}, "this provider is already enabled"),
        ("userpass", {}, "this provider is already enabled"),
        ("openid_connect", {**OIDC, "client_id": "cid"}, "this provider is already connected"),
        ("mock", {}, "only one of this adapter type may be enabled per account"),
    ]
    for adapter, config, message in cases:
        with pytest.raises(ValidationFailed) as exc:
            provider_create_system(
                account=subject.account, name="Again", adapter=adapter, adapter_config=config
            )
        assert exc.value.errors == {"adapter": [message]}
    assert _rows() == before
    # Another client id, or another account, is fine.
    provider_create_system(
        account=subject.account,
        name="O2",
        adapter="openid_connect",
        adapter_config={**OIDC, "client_id": "other"},
    )
    provider_create_system(account=AccountFactory(), name="Email", adapter="email")


def test_create_with_pregenerated_id(subject) -> None:
    import uuid

    wanted = uuid.uuid4()
    assert provider_create(subject=subject, name="E", adapter="email", id=wanted).pk == wanted


def test_update(subject) -> None:
    provider = ProviderFactory(account=subject.account, oidc=True)
    updated = provider_update(
        subject=subject,
        provider=provider,
        name="Renamed",
        adapter_config={**OIDC, "client_id": "new"},
    )
    assert updated.name == "Renamed" and updated.adapter_config["client_id"] == "new"
    entry = ChangeLog.objects.get(table="auth_providers", op="update")
    assert entry.old_data is not None
    assert entry.old_data["name"] != "Renamed"
    with pytest.raises(ValidationFailed):
        provider_update(subject=subject, provider=provider, adapter_config={"client_id": "x"})
    provider.refresh_from_db()
    assert provider.adapter_config["client_id"] == "new"


def test_disable_deletes_identity_tokens_and_guards_last(subject) -> None:
    account = subject.account
    first = ProviderFactory(account=account)
    identity = IdentityFactory(actor=subject.actor, account=account, provider=first)
    issued = token_create(type="browser", account=account, actor=subject.actor, identity=identity)
    with pytest.raises(Refused) as exc:
        provider_disable(subject=subject, provider=first)
    assert exc.value.code == "cant_disable_the_last_provider"
    second = ProviderFactory(account=account, oidc=True)
    provider_disable(subject=subject, provider=first)
    assert not Token.objects.filter(pk=issued.token.pk).exists()
    assert ChangeLog.objects.filter(table="tokens", op="delete").count() == 1
    with pytest.raises(Refused):
        provider_disable(subject=subject, provider=second)
    with pytest.raises(Refused) as exc:
        provider_delete(subject=subject, provider=second)
    assert exc.value.code == "cant_delete_the_last_provider"
    provider_enable(subject=subject, provider=first)
    first.refresh_from_db()
    assert first.disabled_at is None


def test_delete_cascades_identities_and_synced_groups(
    subject, django_capture_on_commit_callbacks
) -> None:
    account = subject.account
    ProviderFactory(account=account)  # stays active
    provider = ProviderFactory(account=account, oidc=True)
    identity = IdentityFactory(actor=subject.actor, account=account, provider=provider)
    group = GroupFactory(account=account, provider=provider, provider_identifier="G:1")
    with django_capture_on_commit_callbacks():
        provider_delete(subject=subject, provider=provider)
    tables = set(ChangeLog.objects.filter(op="delete").values_list("table", flat=True))
    assert tables == {"auth_providers", "auth_identities", "actor_groups"}
    assert not type(identity).objects.filter(pk=identity.pk).exists()
    assert not type(group).objects.filter(pk=group.pk).exists()
    subject.actor.refresh_from_db()  # actors stay


def test_default_provider(subject) -> None:
    account = subject.account
    first = ProviderFactory(account=account, oidc=True)
    second = ProviderFactory(account=account, oidc=True)
    provider_assign_default(subject=subject, provider=first)
    assert default_provider(account=account) == first
    provider_assign_default(subject=subject, provider=second)
    assert default_provider(account=account) == second
    first.refresh_from_db()
    assert first.assigned_default_at is None
    provider_clear_default(subject=subject)
    assert default_provider(account=account) is None
    ProviderFactory(account=account)
    provider_disable(subject=subject, provider=first)
    with pytest.raises(Refused):
        provider_assign_default(subject=subject, provider=first)


@pytest.mark.parametrize("actor_type", ACTOR_TYPES)
def test_permissions(actor_type) -> None:
    account = AccountFactory()
    subject = subject_of_type(account, actor_type)
    existing = AuthProvider.objects.filter(account=account).first() or ProviderFactory(
        account=account
    )
    oidc = ProviderFactory(account=account, oidc=True)
    calls = [
        lambda: provider_create(
            subject=subject, name="O", adapter="openid_connect", adapter_config=OIDC
        ),
        lambda: provider_update(subject=subject, provider=oidc, name="N"),
        lambda: provider_assign_default(subject=subject, provider=oidc),
        lambda: provider_clear_default(subject=subject),
        lambda: provider_disable(subject=subject, provider=oidc),
        lambda: provider_enable(subject=subject, provider=oidc),
        lambda: provider_get(subject, provider_id=existing.pk),
        lambda: provider_list(subject).count(),
        lambda: provider_delete(subject=subject, provider=oidc),
    ]
    for call in calls:
        if actor_type in (ADMIN, API):
            call()
        else:
            with pytest.raises(Unauthorized):
                call()


def test_tenant_isolation(subject) -> None:
    foreign = ProviderFactory()
    for call in (
        lambda: provider_get(subject, provider_id=foreign.pk),
        lambda: provider_update(subject=subject, provider=foreign, name="x"),
        lambda: provider_disable(subject=subject, provider=foreign),
        lambda: provider_delete(subject=subject, provider=foreign),
        lambda: provider_assign_default(subject=subject, provider=foreign),
    ):
        with pytest.raises(NotFound):
            call()
    assert foreign not in provider_list(subject)


def test_system_lookups() -> None:
    account = AccountFactory()
    email = ProviderFactory(account=account)
    userpass = ProviderFactory(account=account, userpass=True, disabled_at="2024-01-01T00:00:00Z")
    assert active_provider_get(account=account, provider_id=email.pk) == email
    assert active_provider_get(account=account, provider_id=userpass.pk) is None
    assert active_provider_get(account=account, provider_id="junk") is None
    assert active_provider_get(account=AccountFactory(), provider_id=email.pk) is None
