"""A sync run's outcome on the provider and the sync-error e-mail (billing_sync_jobs.md §2.3
steps 1, 4, 5, §2.7, §4.2; scenarios 37-40)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import AuthIdentity, AuthProvider
from accounts.tests.factories import AccountFactory, ActorFactory, IdentityFactory, ProviderFactory
from directory_sync import adapters
from directory_sync.directory import (
    DirectoryGroup,
    SyncCountedFailure,
    SyncLogOnly,
    SyncUnauthorized,
)
from directory_sync.services.runs import (
    FEATURE_OFF,
    SYNC_ERROR_SUBJECT,
    failure_log_level,
    provider_sync_run,
    sync_error_recipients,
)
from directory_sync.tests.fake_directory import FakeDirectory

pytestmark = pytest.mark.django_db

A = AuthProvider.Adapter


def google(**fields: object) -> AuthProvider:
    account = fields.pop("account", None) or AccountFactory()
    return ProviderFactory(
        account=account,
        name="Google",
        adapter=A.GOOGLE_WORKSPACE,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        **fields,
    )


def email_provider_of(provider: AuthProvider) -> AuthProvider:
    found = AuthProvider.objects.filter(account=provider.account, adapter=A.EMAIL).first()
    return found or ProviderFactory(account=provider.account, name="Email")


def admin_with_email(provider: AuthProvider, address: str) -> None:
    email_provider = email_provider_of(provider)
    actor = ActorFactory(account=provider.account, admin=True)
    IdentityFactory(
        actor=actor, account=provider.account, provider=email_provider, provider_identifier=address
    )


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> FakeDirectory:
    fake = FakeDirectory()
    monkeypatch.setitem(adapters.DIRECTORIES, A.GOOGLE_WORKSPACE, fake)
    return fake


def test_success_sets_synced_and_resets_the_failure_streak(directory: FakeDirectory) -> None:
    emailed = timezone.now() - timedelta(hours=1)
    provider = google(
        last_syncs_failed=12,
        last_sync_error="old error",
        sync_error_emailed_at=emailed,
    )
    run = provider_sync_run(provider=provider)
    assert run.outcome == "synced"
    provider.refresh_from_db()
    assert provider.last_synced_at is not None
    assert provider.last_sync_attempt_at == provider.last_synced_at
    assert provider.last_syncs_failed == 0
    assert provider.sync_disabled_at is None
    assert provider.sync_error_emailed_at is None
    # §2.3 step 4: the error text is left as is.
    assert provider.last_sync_error == "old error"
    assert directory.reads == 1
    assert mail.outbox == []


def test_feature_off_is_a_counted_failure_without_api_call_or_email(
    directory: FakeDirectory,
) -> None:
    provider = google(
        account=AccountFactory(features={"idp_sync": False}),
        last_synced_at=timezone.now(),
        last_syncs_failed=9,
    )
    admin_with_email(provider, "admin@example.com")
    run = provider_sync_run(provider=provider)
    assert (run.outcome, run.message) == ("failed", FEATURE_OFF)
    provider.refresh_from_db()
    assert provider.last_sync_error == "IdP sync is not enabled in your subscription plan"
    assert provider.last_syncs_failed == 10
    assert provider.last_synced_at is None
    assert provider.last_sync_attempt_at is not None
    assert directory.reads == 0
    # No e-mail evaluation, even at 10 in a row.
    assert mail.outbox == [] and provider.sync_error_emailed_at is None


def test_counted_failure(directory: FakeDirectory) -> None:
    provider = google(last_synced_at=timezone.now())
    directory.error = SyncCountedFailure("Google API is temporarily unavailable")
    run = provider_sync_run(provider=provider)
    assert run.outcome == "failed"
    provider.refresh_from_db()
    assert provider.last_synced_at is None
    assert provider.last_syncs_failed == 1
    assert provider.last_sync_error == "Google API is temporarily unavailable"
    assert provider.sync_disabled_at is None
    assert provider.last_sync_attempt_at is not None
    directory.error = SyncCountedFailure("Domain not found")
    provider_sync_run(provider=provider)
    provider.refresh_from_db()
    assert (provider.last_syncs_failed, provider.last_sync_error) == (2, "Domain not found")
    assert mail.outbox == []


def test_counted_failures_email_from_ten_then_once_a_day(directory: FakeDirectory) -> None:
    provider = google(last_syncs_failed=8)
    admin_with_email(provider, "admin@example.com")
    directory.error = SyncCountedFailure("Quota exceeded")
    provider_sync_run(provider=provider)  # 9: below the threshold
    assert mail.outbox == []
    run = provider_sync_run(provider=provider)  # 10: e-mailed
    assert run.emailed
    (message,) = mail.outbox
    assert message.subject == SYNC_ERROR_SUBJECT
    assert message.to == ["admin@example.com"]
    assert "has failed to sync 10 time(s)" in message.body
    assert "Quota exceeded" in message.body
    assert str(provider.pk) in message.body and str(provider.account.pk) in message.body
    html = message.alternatives[0][0]  # type: ignore[attr-defined]
    assert "has failed to sync 10 time(s)" in html
    provider.refresh_from_db()
    first_email = provider.sync_error_emailed_at
    assert first_email is not None
    # 11, less than 24 h later: no e-mail.
    provider_sync_run(provider=provider)
    provider.refresh_from_db()
    assert provider.last_syncs_failed == 11 and len(mail.outbox) == 1
    assert provider.sync_error_emailed_at == first_email
    # 24 h after the last e-mail: again.
    AuthProvider.objects.filter(pk=provider.pk).update(
        sync_error_emailed_at=timezone.now() - timedelta(hours=24, seconds=1)
    )
    provider.refresh_from_db()
    provider_sync_run(provider=provider)
    assert len(mail.outbox) == 2
    assert "has failed to sync 12 time(s)" in mail.outbox[1].body
    # Success clears the guard, so the next streak e-mails again after 10.
    directory.error = None
    provider_sync_run(provider=provider)
    provider.refresh_from_db()
    assert provider.sync_error_emailed_at is None and provider.last_syncs_failed == 0


def test_unauthorized_disables_the_sync_and_emails_at_once(directory: FakeDirectory) -> None:
    provider = google(
        last_synced_at=timezone.now(), sync_error_emailed_at=timezone.now() - timedelta(hours=1)
    )
    admin_with_email(provider, "admin@example.com")
    admin_with_email(provider, "second@example.com")
    directory.error = SyncUnauthorized("Invalid Credentials")
    run = provider_sync_run(provider=provider)
    assert (run.outcome, run.emailed) == ("unauthorized", True)
    provider.refresh_from_db()
    assert provider.sync_disabled_at is not None
    assert provider.last_synced_at is None
    assert provider.last_syncs_failed == 1
    assert provider.last_sync_error == "Invalid Credentials"
    assert provider.sync_error_emailed_at is not None
    # Threshold and 24 h guard ignored: one message per admin address.
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@example.com", "second@example.com"]
    assert all("has failed to sync 1 time(s)" in m.body for m in mail.outbox)
    assert "reconnect the provider" in mail.outbox[0].body


@pytest.mark.parametrize(
    "error",
    [SyncLogOnly("Google API returned 302"), RuntimeError("adapter bug")],
    ids=["log_only", "adapter_crash"],
)
def test_log_only_failure_changes_nothing_but_the_attempt(
    directory: FakeDirectory, error: Exception
) -> None:
    synced = timezone.now() - timedelta(hours=2)
    provider = google(last_synced_at=synced, last_syncs_failed=2, last_sync_error="before")
    admin_with_email(provider, "admin@example.com")
    directory.error = error
    run = provider_sync_run(provider=provider)
    assert run.outcome == "log_only"
    provider.refresh_from_db()
    assert provider.last_synced_at == synced
    assert provider.last_syncs_failed == 2
    assert provider.last_sync_error == "before"
    assert provider.sync_disabled_at is None
    assert provider.last_sync_attempt_at is not None and provider.last_sync_attempt_at > synced
    assert mail.outbox == []


def test_a_deletion_above_the_breaker_changes_nothing_and_is_shown(
    directory: FakeDirectory,
) -> None:
    """Issue 16: the circuit breaker's refusal is counted and shown (not the original's
    log-only "Repo error"), and nothing of the sync is applied."""
    provider = google(last_syncs_failed=0)
    assert provider_sync_run(provider=provider).outcome == "synced"
    before = AuthIdentity.objects.filter(provider=provider).count()
    directory.identities_list = []  # every identity gone upstream: 100 % > 50 %
    run = provider_sync_run(provider=provider)
    assert run.outcome == "failed"
    assert run.message == "Sync deletion of identities too large"
    provider.refresh_from_db()
    assert provider.last_syncs_failed == 1
    assert provider.last_sync_error == "Sync deletion of identities too large"
    assert AuthIdentity.objects.filter(provider=provider).count() == before


def test_a_database_error_while_writing_is_log_only(directory: FakeDirectory) -> None:
    """§2.7 row 4: a DB error (here a NUL byte PostgreSQL refuses) is logged only."""
    directory.groups_list = [DirectoryGroup("G:1", "Group:\x00bad")]
    provider = google(last_syncs_failed=0)
    run = provider_sync_run(provider=provider)
    assert run.outcome == "log_only"
    assert run.message is not None and run.message.startswith("Repo error: ")
    provider.refresh_from_db()
    assert provider.last_synced_at is None and provider.last_syncs_failed == 0
    assert provider.last_sync_error is None


def test_unregistered_adapter_is_log_only() -> None:
    provider = google()
    provider.adapter = "nonexistent"
    assert provider_sync_run(provider=provider).outcome == "log_only"


def test_failure_log_levels(directory: FakeDirectory, caplog: pytest.LogCaptureFixture) -> None:
    assert failure_log_level(0) == failure_log_level(2) == logging.INFO
    assert failure_log_level(3) == failure_log_level(99) == logging.WARNING
    assert failure_log_level(100) == logging.ERROR
    provider = google(last_syncs_failed=99)
    directory.error = SyncCountedFailure("down")
    with caplog.at_level(logging.INFO, logger="directory_sync.services.runs"):
        provider_sync_run(provider=provider)
    record = next(r for r in caplog.records if "directory sync failed" in r.getMessage())
    assert record.levelno == logging.ERROR and "100 in a row" in record.getMessage()


def test_recipients_are_enabled_admins_deduplicated() -> None:
    provider = google()
    admin_with_email(provider, "admin@example.com")
    actor = ActorFactory(account=provider.account, admin=True)
    IdentityFactory(  # the same address, another case, at another provider
        actor=actor,
        account=provider.account,
        provider=ProviderFactory(account=provider.account, userpass=True),
        provider_identifier="admin2",
        email="ADMIN@example.com",
    )
    disabled = ActorFactory(account=provider.account, admin=True, disabled_at=timezone.now())
    IdentityFactory(
        actor=disabled,
        account=provider.account,
        provider=email_provider_of(provider),
        provider_identifier="off@x.test",
    )
    user = ActorFactory(account=provider.account)
    IdentityFactory(
        actor=user,
        account=provider.account,
        provider=email_provider_of(provider),
        provider_identifier="user@x.test",
    )
    synced_admin = ActorFactory(account=provider.account, admin=True)
    IdentityFactory(
        actor=synced_admin,
        account=provider.account,
        provider=provider,
        provider_identifier="U9",
        email=None,
        provider_state={"userinfo": {"email": "idp-admin@example.com"}},
    )
    other = google(account=AccountFactory())
    admin_with_email(other, "elsewhere@example.com")
    assert sync_error_recipients(provider) == ["admin@example.com", "idp-admin@example.com"]
