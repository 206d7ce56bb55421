"""Resource services and selectors (domain.md §2.12, §3.3, §4.1)."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from django.db import transaction

from accounts.tests.factories import (
    AccountFactory,
    ActorFactory,
    admin_subject,
    subject_for,
)
from firezone import addresses, stream
from firezone.errors import NotFound, Refused, Unauthorized, ValidationFailed
from firezone.models import ChangeLog
from resources.models import Flow, Policy, Resource, ResourceConnection
from resources.selectors import resources as sel
from resources.services import resources as svc
from resources.tests.factories import (
    ConnectionFactory,
    GatewayFactory,
    PolicyFactory,
    ResourceFactory,
    SiteFactory,
    World,
    make_flow,
)

pytestmark = pytest.mark.django_db

ADMIN, API, USER, SA = "account_admin_user", "api_client", "account_user", "service_account"


def _admin(account=None):
    return admin_subject(account or AccountFactory())


def _create(subject, **kwargs):
    site = kwargs.pop("site", None) or SiteFactory(account=subject.account)
    kwargs.setdefault("name", "App")
    kwargs.setdefault("type", "dns")
    kwargs.setdefault("address", "app.example.com")
    kwargs.setdefault("connections", [site.pk])
    return svc.resource_create(subject=subject, **kwargs)


def _changes(table: str, op: str | None = None):
    rows = ChangeLog.objects.filter(table=table)
    return rows.filter(op=op) if op else rows


# --- create: address rules per type -------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "address", "stored"),
    [
        ("dns", "  **.example.com  ", "**.example.com"),
        ("dns", "myhost", "myhost"),
        ("ip", " 10.0.0.1 ", "10.0.0.1"),
        ("ip", "2001:DB8::1", "2001:db8::1"),
        ("cidr", "192.168.1.1/28", "192.168.1.0/28"),
        ("cidr", "2001:db8::ff/64", "2001:db8::/64"),
    ],
)
def test_create_normalises_address(type_, address, stored):
    subject = _admin()
    resource = _create(subject, type=type_, address=address)
    resource.refresh_from_db()
    assert resource.address == stored
    assert resource.ip_stack == ("dual" if type_ == "dns" else None)
    assert resource.account_id == subject.account_id
    assert resource.created_by == "identity"
    assert resource.persistent_id is not None


@pytest.mark.parametrize(
    ("type_", "address", "message"),
    [
        ("dns", "localhost", addresses.MSG_DNS_LOCALHOST),
        ("dns", "*.com", addresses.MSG_DNS_IANA_WILDCARDS),
        ("dns", "10.0.0.1", addresses.MSG_DNS_IS_IP),
        ("dns", "   ", addresses.MSG_BLANK),
        ("ip", "10.0.0.0/8", addresses.MSG_IP_INVALID),
        ("ip", "127.0.0.1", addresses.MSG_LOOPBACK),
        ("ip", "100.64.0.5", "cannot be in the CIDR 100.64.0.0/10"),
        ("cidr", "10.0.0.1", addresses.MSG_CIDR_NETMASK),
        ("cidr", "0.0.0.0/0", addresses.MSG_CIDR_INTERNET_ENABLED),
    ],
)
def test_create_rejects_bad_address_and_writes_nothing(type_, address, message):
    subject = _admin()
    site = SiteFactory(account=subject.account)
    before = (
        Resource.objects.count(),
        ResourceConnection.objects.count(),
        ChangeLog.objects.count(),
    )
    with pytest.raises(ValidationFailed) as exc:
        _create(subject, type=type_, address=address, site=site)
    assert message in exc.value.errors["address"]
    after = (
        Resource.objects.count(),
        ResourceConnection.objects.count(),
        ChangeLog.objects.count(),
    )
    assert after == before


def test_cidr_all_traffic_message_depends_on_internet_feature():
    account = AccountFactory(features={"internet_resource": False})
    with pytest.raises(ValidationFailed) as exc:
        _create(admin_subject(account), type="cidr", address="0.0.0.0/0")
    assert addresses.MSG_CIDR_INTERNET_DISABLED in exc.value.errors["address"]
    assert addresses.MSG_LOOPBACK in exc.value.errors["address"]


def test_create_validates_every_field_at_once():
    subject = _admin()
    with pytest.raises(ValidationFailed) as exc:
        svc.resource_create(
            subject=subject,
            name=" ",
            type="dns",
            address="app.example.com",
            address_description="x" * 256,
            filters=[{"protocol": "sctp"}],
            connections=[],
        )
    errors = exc.value.errors
    assert errors["name"] == ["can't be blank"]
    assert errors["address_description"] == ["should be at most 255 character(s)"]
    assert errors["filters.0.protocol"] == ["is invalid"]
    assert errors["connections"] == ["can't be blank"]
    assert Resource.objects.count() == 0


def test_create_name_and_description_trimmed_and_bounded():
    subject = _admin()
    resource = _create(subject, name="  App  ", address_description="  docs  ")
    assert (resource.name, resource.address_description) == ("App", "docs")
    with pytest.raises(ValidationFailed) as exc:
        _create(subject, name="n" * 256)
    assert exc.value.errors["name"] == ["should be at most 255 character(s)"]
    assert _create(subject, address_description="   ").address_description is None


def test_ip_stack_rules():
    subject = _admin()
    assert _create(subject, ip_stack="ipv6_only").ip_stack == "ipv6_only"
    with pytest.raises(ValidationFailed) as exc:
        _create(subject, type="ip", address="10.0.0.1", ip_stack="dual")
    assert exc.value.errors["ip_stack"] == [addresses.MSG_IP_STACK]
    with pytest.raises(ValidationFailed):
        _create(subject, ip_stack="both")


def test_filters_normalised():
    resource = _create(
        _admin(),
        filters=[{"protocol": "TCP", "ports": ["443", "8080-8090"]}, {"protocol": "icmp"}],
    )
    assert resource.filters == [
        {"protocol": "tcp", "ports": ["443", "8080 - 8090"]},
        {"protocol": "icmp", "ports": []},
    ]
    with pytest.raises(ValidationFailed) as exc:
        _create(_admin(), filters=[{"protocol": "udp", "ports": ["90-80"]}])
    assert exc.value.errors["filters.0.ports"] == [addresses.MSG_PORT_LOWER_HIGHER]


def test_internet_type_cannot_be_created_by_users():
    subject = _admin()
    site = SiteFactory(account=subject.account, internet=True)
    with pytest.raises(ValidationFailed) as exc:
        _create(subject, type="internet", address=None, site=site)
    assert exc.value.errors["type"] == [svc.MSG_INTERNET_BY_SYSTEM]


def test_connections_must_be_sites_of_the_account_and_not_the_internet_site():
    subject = _admin()
    other_site = SiteFactory()
    with pytest.raises(ValidationFailed) as exc:
        _create(subject, site=other_site)
    assert exc.value.errors["connections"] == [svc.MSG_SITE_NOT_FOUND]
    with pytest.raises(ValidationFailed) as exc:
        _create(subject, connections=["not-a-uuid"])
    assert exc.value.errors["connections"] == [svc.MSG_SITE_NOT_FOUND]
    internet_site = SiteFactory(account=subject.account, internet=True)
    with pytest.raises(ValidationFailed) as exc:
        _create(subject, site=internet_site)
    assert exc.value.errors["connections"] == [svc.MSG_INTERNET_SITE]
    assert Resource.objects.count() == 0


def test_create_connects_sites_with_trail_and_records_changes(django_capture_on_commit_callbacks):
    subject = _admin()
    a, b = SiteFactory(account=subject.account), SiteFactory(account=subject.account)
    with django_capture_on_commit_callbacks() as callbacks:
        resource = _create(subject, connections=[a.pk, {"gateway_group_id": str(b.pk)}, a])
    connections = ResourceConnection.objects.filter(resource=resource)
    assert {c.gateway_group_id for c in connections} == {a.pk, b.pk}
    assert all(c.account_id == subject.account_id for c in connections)
    assert all(c.created_by == "identity" for c in connections)
    assert _changes("resources", "insert").count() == 1
    assert _changes("resource_connections", "insert").count() == 2
    assert len(callbacks) == 3


def test_events_only_on_commit(django_capture_on_commit_callbacks, monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr(
        stream, "publish", lambda account_id, xid, batch: sent.extend({"change": c} for c in batch)
    )
    subject = _admin()
    site = SiteFactory(account=subject.account)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        contextlib.suppress(RuntimeError),
        transaction.atomic(),
    ):
        _create(subject, site=site)
        raise RuntimeError("roll back")
    assert callbacks == [] and sent == []
    assert not Resource.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        _create(subject, site=site)
        assert sent == []  # nothing before the commit
    assert [m["change"]["table"] for m in sent] == ["resources", "resource_connections"]


# --- update -------------------------------------------------------------------------------------


def test_update_trims_and_revalidates_on_type_change():
    subject = _admin()
    resource = _create(subject)
    updated = svc.resource_update(
        subject=subject, resource=resource, type="cidr", address=" 10.1.2.3/16 "
    )
    assert (updated.type, updated.address, updated.ip_stack) == ("cidr", "10.1.0.0/16", None)
    # Changing only the type re-validates the kept address.
    with pytest.raises(ValidationFailed) as exc:
        svc.resource_update(subject=subject, resource=resource, type="ip")
    assert exc.value.errors["address"] == [addresses.MSG_IP_INVALID]
    back = svc.resource_update(subject=subject, resource=resource, type="dns", address="x.io")
    assert back.ip_stack == "dual"
    assert svc.resource_update(subject=subject, resource=resource, address="  y.io ").address == (
        "y.io"
    )


def test_update_address_deletes_flows_and_records_them(django_capture_on_commit_callbacks):
    world = World()
    subject = admin_subject(world.account)
    flow = make_flow(world)
    with django_capture_on_commit_callbacks() as callbacks:
        svc.resource_update(subject=subject, resource=world.resource, address="new.example.com")
    assert not Flow.objects.filter(pk=flow.pk).exists()
    deleted = _changes("flows", "delete").get()
    assert deleted.old_data["id"] == str(flow.pk)
    assert _changes("resources", "update").count() == 1
    assert len(callbacks) == 2


def test_update_name_or_filters_keeps_flows():
    world = World()
    subject = admin_subject(world.account)
    flow = make_flow(world)
    svc.resource_update(
        subject=subject, resource=world.resource, name="Renamed", filters=[{"protocol": "udp"}]
    )
    assert Flow.objects.filter(pk=flow.pk).exists()
    assert not _changes("flows").exists()


def test_update_connections_replaces_set_and_ends_flows_through_removed_site():
    world = World()
    subject = admin_subject(world.account)
    other = SiteFactory(account=world.account)
    other_gateway = GatewayFactory(group=other, account=world.account)
    ConnectionFactory(resource=world.resource, gateway_group=other, account=world.account)
    kept = make_flow(world, gateway=other_gateway)
    gone = make_flow(world)
    third = SiteFactory(account=world.account)

    svc.resource_update(subject=subject, resource=world.resource, connections=[other, third])

    sites = set(
        ResourceConnection.objects.filter(resource=world.resource).values_list(
            "gateway_group_id", flat=True
        )
    )
    assert sites == {other.pk, third.pk}
    assert Flow.objects.filter(pk=kept.pk).exists()
    assert not Flow.objects.filter(pk=gone.pk).exists()
    assert _changes("resource_connections", "delete").count() == 1
    assert _changes("resource_connections", "insert").count() == 1
    assert _changes("flows", "delete").count() == 1
    with pytest.raises(ValidationFailed) as exc:
        svc.resource_update(subject=subject, resource=world.resource, connections=[])
    assert exc.value.errors["connections"] == ["can't be blank"]


def test_update_other_account_is_not_found():
    resource = ResourceFactory()
    with pytest.raises(NotFound):
        svc.resource_update(subject=_admin(), resource=resource.pk, name="x")
    with pytest.raises(NotFound):
        svc.resource_delete(subject=_admin(), resource=resource)


def test_update_invalid_writes_nothing():
    subject = _admin()
    resource = _create(subject)
    before = ChangeLog.objects.count()
    with pytest.raises(ValidationFailed):
        svc.resource_update(subject=subject, resource=resource, name="ok", address="localhost")
    resource.refresh_from_db()
    assert resource.address == "app.example.com"
    assert ChangeLog.objects.count() == before


# --- delete and the Internet resource -----------------------------------------------------------


def test_delete_cascades_and_records_every_row():
    world = World()
    flow = make_flow(world)
    svc.resource_delete(subject=admin_subject(world.account), resource=world.resource)
    assert not Resource.objects.filter(pk=world.resource.pk).exists()
    assert not Policy.objects.filter(pk=world.policy.pk).exists()
    assert not Flow.objects.filter(pk=flow.pk).exists()
    for table in ("resources", "resource_connections", "policies", "flows"):
        assert _changes(table, "delete").count() == 1, table


def test_internet_resource_system_create_is_idempotent_and_undeletable():
    account = AccountFactory()
    site = SiteFactory(account=account, internet=True)
    resource = svc.resource_create_internet(account=account)
    assert (resource.type, resource.name, resource.address) == ("internet", "Internet", None)
    assert resource.created_by == "system"
    assert ResourceConnection.objects.get(resource=resource).gateway_group_id == site.pk
    assert svc.resource_create_internet(account=account, site=site).pk == resource.pk
    assert Resource.objects.filter(account=account).count() == 1
    subject = admin_subject(account)
    with pytest.raises(Refused) as exc:
        svc.resource_delete(subject=subject, resource=resource)
    assert exc.value.code == "cant_delete_internet_resource"
    with pytest.raises(ValidationFailed):
        svc.resource_update(subject=subject, resource=resource, type="dns", address="a.io")
    assert sel.internet_resource_get(subject).pk == resource.pk


def test_internet_resource_needs_internet_site():
    account = AccountFactory()
    with pytest.raises(NotFound):
        svc.resource_create_internet(account=account)
    with pytest.raises(ValidationFailed):
        svc.resource_create_internet(account=account, site=SiteFactory(account=account))


# --- permissions --------------------------------------------------------------------------------

MANAGE = {ADMIN: True, API: True, USER: False, SA: False}


@pytest.mark.parametrize("actor_type", [ADMIN, API, USER, SA])
def test_manage_permissions(actor_type):
    world = World()
    subject = subject_for(ActorFactory(account=world.account, type=actor_type))
    site = world.site
    calls = [
        lambda: _create(subject, site=site),
        lambda: svc.resource_update(subject=subject, resource=world.resource, name="n"),
        lambda: sel.resource_list(subject).count(),
        lambda: sel.resource_peek_actor_groups(subject, [world.resource]),
        lambda: svc.resource_delete(subject=subject, resource=world.resource),
    ]
    for call in calls:
        if MANAGE[actor_type]:
            call()
        else:
            with pytest.raises(Unauthorized):
                call()


# --- selectors ----------------------------------------------------------------------------------


def test_view_available_scope_for_users():
    world = World()
    subject = subject_for(world.actor)
    hidden = ResourceFactory(account=world.account)
    ConnectionFactory(resource=hidden, account=world.account)
    assert (
        sel.resource_get_by_id_or_persistent_id(subject, world.resource.pk).pk == world.resource.pk
    )
    with pytest.raises(NotFound):
        sel.resource_get_by_id_or_persistent_id(subject, hidden.pk)
    assert sel.resource_get_by_id_or_persistent_id(subject, world.resource.persistent_id)
    # A disabled policy grants nothing.
    Policy.objects.filter(pk=world.policy.pk).update(disabled_at="2024-01-01T00:00:00Z")
    with pytest.raises(NotFound):
        sel.resource_get_by_id_or_persistent_id(subject, world.resource.pk)
    with pytest.raises(NotFound):
        sel.resource_get_by_id_or_persistent_id(subject, "nope")


def test_resource_get_other_account_not_found():
    world = World()
    with pytest.raises(NotFound):
        sel.resource_get_by_id_or_persistent_id(_admin(), world.resource.pk)


def test_resource_list_hides_internet_without_feature_and_searches():
    account = AccountFactory(features={"internet_resource": False})
    SiteFactory(account=account, internet=True)
    internet = svc.resource_create_internet(account=account)
    subject = admin_subject(account)
    app = ResourceFactory(account=account, name="Billing", address="billing.corp.io")
    ResourceFactory()  # another account
    assert [r.pk for r in sel.resource_list(subject)] == [app.pk]
    account.features = {"internet_resource": True}
    account.save()  # subject.account is this very instance
    assert {r.pk for r in sel.resource_list(subject)} == {app.pk, internet.pk}
    assert [r.pk for r in sel.resource_list(subject, search="corp")] == [app.pk]
    assert [r.pk for r in sel.resource_list(subject, type="internet")] == [internet.pk]


def test_peek_actor_groups_and_counts():
    world = World()
    subject = admin_subject(world.account)
    for _ in range(3):
        PolicyFactory(account=world.account, resource=world.resource)
    peek = sel.resource_peek_actor_groups(subject, [world.resource, uuid.uuid4()], limit=2)
    assert peek[world.resource.pk].count == 4
    assert len(peek[world.resource.pk].items) == 2
