"""Every audit source names its writer in the change log (issue 18): a portal write, an API
write, a directory sync, a Celery job, a management command, the Stripe webhook path and the
staff admin; and old rows without a `kind` still read."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import Account, AuthProvider
from accounts.tests.factories import AccountFactory, ActorFactory, ProviderFactory
from accounts.tests.portal import UA, inject_session, make_acme
from billing import tasks as billing_tasks
from billing.tests.helpers import post_event, provisioned_account
from directory_sync import adapters
from directory_sync import tasks as sync_tasks
from directory_sync.tests.fake_directory import FakeDirectory
from firezone import changes
from firezone.models import ChangeLog
from firezone.origin import current, kind_of
from resources.models import Resource
from resources.tests.factories import SiteFactory
from tests.api import API_HOST, api_token
from tests.stripe_fake import FIXTURE_CUSTOMER, StripeFake, event

pytestmark = pytest.mark.django_db

PUBLIC_IP = "203.0.113.7"
API_UA = "terraform-provider-firezone/1.0"


def _subjects(table: str, **filters: Any) -> list[dict[str, Any] | None]:
    return list(
        ChangeLog.objects.filter(table=table, **filters)
        .order_by("lsn")
        .values_list("subject", flat=True)
    )


def test_a_portal_write_names_the_actor_and_where_from() -> None:
    acme = make_acme()
    site = SiteFactory(account=acme.account, name="HQ")
    client = Client(HTTP_USER_AGENT=UA, REMOTE_ADDR=PUBLIC_IP)
    inject_session(client, acme.admin_identity)
    response = client.post(
        "/acme/resources/new",
        {
            "resource[type]": "dns",
            "resource[address]": "gitlab.company.com",
            "resource[address_description]": "",
            "resource[name]": "GitLab",
            "resource[ip_stack]": "dual",
            "resource[connections][]": [str(site.pk)],
        },
    )
    assert response.status_code == 302
    resource = Resource.objects.get(account=acme.account, name="GitLab")
    [subject] = _subjects("resources", op="insert", data__id=str(resource.pk))
    assert subject is not None
    assert subject["kind"] == "actor"
    assert subject["actor_id"] == str(acme.admin.pk)
    assert subject["actor_name"] == "Admin"
    assert subject["actor_type"] == "account_admin_user"
    assert subject["identity_id"] == str(acme.admin_identity.pk)
    assert subject["token_id"]  # the browser session's token
    assert subject["context"] == "browser"
    assert subject["remote_ip"] == PUBLIC_IP
    assert subject["user_agent"] == UA


def test_an_api_write_names_the_api_client() -> None:
    account = AccountFactory()
    api_actor = ActorFactory(account=account, api_client=True, name="Terraform")
    site = SiteFactory(account=account)
    client = Client(
        HTTP_HOST=API_HOST,
        REMOTE_ADDR=PUBLIC_IP,
        headers={"authorization": f"Bearer {api_token(api_actor)}", "user-agent": API_UA},
    )
    body = {
        "resource": {
            "name": "Web",
            "type": "dns",
            "address": "web.example.com",
            "connections": [{"gateway_group_id": str(site.pk)}],
        }
    }
    response = client.post("/resources", body, content_type="application/json")
    assert response.status_code == 201
    resource = Resource.objects.get(account=account, name="Web")
    [subject] = _subjects("resources", op="insert", data__id=str(resource.pk))
    assert subject is not None
    assert subject["kind"] == "api_client"
    assert (subject["actor_id"], subject["actor_name"]) == (str(api_actor.pk), "Terraform")
    assert subject["actor_type"] == "api_client"
    assert subject["identity_id"] is None and subject["token_id"]
    assert subject["context"] == "api_client"
    assert (subject["remote_ip"], subject["user_agent"]) == (PUBLIC_IP, API_UA)


def test_a_directory_sync_names_the_identity_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    # The sync's Celery task runs the sync: the provider is the innermost origin, not the job.
    monkeypatch.setitem(
        adapters.DIRECTORIES, AuthProvider.Adapter.GOOGLE_WORKSPACE, FakeDirectory()
    )
    provider = ProviderFactory(
        account=AccountFactory(),
        name="Google",
        adapter=AuthProvider.Adapter.GOOGLE_WORKSPACE,
        provisioner=AuthProvider.Provisioner.CUSTOM,
    )
    assert sync_tasks.sync_provider(str(provider.pk), force=True) == "synced"
    expected = {
        "kind": "identity_provider",
        "provider_id": str(provider.pk),
        "provider_name": "Google",
        "context": "sync",
    }
    for table in ("actors", "auth_identities", "actor_groups", "actor_group_memberships"):
        subjects = _subjects(table, account_id=provider.account_id, op="insert")
        assert subjects and all(s == expected for s in subjects), table
    assert current() is None  # the origin ends with the run


def test_a_job_names_its_task(stripe_fake: StripeFake) -> None:
    account = AccountFactory(
        metadata={"stripe": {"customer_id": FIXTURE_CUSTOMER}},
        limits={"users_count": 10},
        warning="You have exceeded the following limits: users",
    )
    assert billing_tasks.check_account_limits() == 1
    [subject] = _subjects("accounts", account_id=account.pk, op="update")
    assert subject == {"kind": "system", "job": "billing.tasks.check_account_limits"}
    # ...through the worker's path too (eager `apply`: the tracer calls the task).
    Account.objects.filter(pk=account.pk).update(warning="You have exceeded: users")
    billing_tasks.check_account_limits.apply()
    subjects = _subjects("accounts", account_id=account.pk, op="update")
    assert subjects[-1] == {"kind": "system", "job": "billing.tasks.check_account_limits"}


def test_a_management_command_names_itself() -> None:
    call_command("create_account", "Initech", "initech", "Bob", "bob@initech.test")
    account = Account.objects.get(slug="initech")
    subjects = _subjects("accounts", account_id=account.pk, op="insert")
    assert subjects == [{"kind": "system", "job": "manage.py create_account"}]


def test_a_staff_admin_write_names_the_staff_user() -> None:
    staff = get_user_model().objects.create_superuser("ops-alice", "alice@example.com", "pw")
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (staff)", REMOTE_ADDR=PUBLIC_IP)
    client.force_login(staff)
    site = SiteFactory(account=AccountFactory(), name="HQ")
    url = reverse("admin:gateways_site_delete", args=[site.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    [subject] = _subjects("gateway_groups", op="delete", old_data__id=str(site.pk))
    assert subject == {
        "kind": "staff",
        "staff_user": "ops-alice",
        "remote_ip": PUBLIC_IP,
        "user_agent": "Mozilla/5.0 (staff)",
    }


def test_without_subject_or_origin_the_subject_stays_null_and_old_rows_read() -> None:
    account = AccountFactory()
    with changes.origin({"kind": "system", "job": "outer"}):
        with changes.origin({"kind": "system", "job": "inner"}):
            changes.record(
                op="update", table="accounts", account_id=account.pk, old={}, new={"a": 1}
            )
        changes.record(op="update", table="accounts", account_id=account.pk, old={}, new={"a": 2})
    changes.record(op="update", table="accounts", account_id=account.pk, old={}, new={"a": 3})
    # A row written before `kind` existed.
    old_shape = {
        "actor_id": "x",
        "actor_name": "Old",
        "actor_type": "account_admin_user",
        "identity_id": None,
        "token_id": None,
    }
    ChangeLog.objects.create(
        account_id=account.pk,
        table="accounts",
        op="update",
        old_data={},
        data={"a": 4},
        subject=old_shape,
    )
    subjects = _subjects("accounts", account_id=account.pk, op="update")
    assert subjects == [
        {"kind": "system", "job": "inner"},
        {"kind": "system", "job": "outer"},
        None,
        old_shape,
    ]
    assert [kind_of(s) for s in subjects] == ["system", "system", "system", "actor"]
    assert kind_of({**old_shape, "actor_type": "api_client"}) == "api_client"


def test_a_stripe_webhook_names_itself(stripe_fake: StripeFake) -> None:
    account = provisioned_account(stripe_fake, slug="bigco")
    payload = event(
        "customer_updated",
        id="evt_audit",
        metadata={"account_id": str(account.pk), "account_name": "New Name"},
    )
    assert post_event(payload).status_code == 200
    subjects = _subjects("accounts", account_id=account.pk, op="update")
    assert subjects == [{"kind": "system", "job": "stripe_webhook"}]
