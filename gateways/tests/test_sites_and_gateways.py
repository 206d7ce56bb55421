"""Sites and gateways (domain.md §2.10): CRUD, limits, Internet site, tokens, gateway connect."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from accounts.auth import Context
from accounts.models import Token
from accounts.services.tokens import token_create
from accounts.tests.factories import AccountFactory
from firezone.errors import LimitReached, NotFound, Refused, Unauthorized, ValidationFailed
from firezone.models import ChangeLog
from gateways.models import Gateway, Site
from gateways.selectors.gateways import gateway_get, gateway_list
from gateways.selectors.sites import internet_site, site_get, site_list
from gateways.services.gateways import (
    gateway_authenticate,
    gateway_delete,
    gateway_upsert,
)
from gateways.services.sites import (
    site_create,
    site_create_internet,
    site_delete,
    site_token_create,
    site_update,
)
from gateways.tests.factories import (
    GATEWAY_UA,
    ClientFactory,
    GatewayFactory,
    SiteFactory,
    flow_for,
    public_key,
    subject_of,
)
from resources.models import Flow, Resource, ResourceConnection

pytestmark = pytest.mark.django_db

KINDS = ["admin", "api_client", "account_user", "service_account"]
MANAGES = {"admin": True, "api_client": True, "account_user": False, "service_account": False}
GATEWAY_CONTEXT = Context(type="gateway_group", user_agent=GATEWAY_UA, remote_ip="198.51.100.4")


def _counts() -> tuple[int, int, int]:
    return Site.objects.count(), Token.objects.count(), ChangeLog.objects.count()


# --- sites ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_site_management_per_actor_type(kind) -> None:
    account = AccountFactory()
    subject = subject_of(kind, account)
    site = SiteFactory(account=account)
    actions = [
        lambda: site_create(subject=subject, name="New"),
        lambda: site_update(subject=subject, site=site, name="Renamed"),
        lambda: site_token_create(subject=subject, site=site),
        lambda: site_delete(subject=subject, site=site),
    ]
    if MANAGES[kind]:
        for action in actions:
            action()
        assert list(Site.objects.values_list("name", flat=True)) == ["New"]
    else:
        before = _counts()
        for action in actions:
            with pytest.raises(Unauthorized):
                action()
        assert _counts() == before
    # Everyone with gateway:connect can read sites.
    assert site_get(subject, site_id=Site.objects.get(account=account).pk).account == account


def test_create_defaults_trims_and_records(django_capture_on_commit_callbacks) -> None:
    subject = subject_of("admin", AccountFactory())
    with django_capture_on_commit_callbacks() as callbacks:
        generated = site_create(subject=subject)
        named = site_create(subject=subject, name="  Office  ")
    assert "-" in generated.name and len(generated.name) <= 64
    assert named.name == "Office"
    assert named.managed_by == "account"
    assert named.created_by == "identity"
    assert named.created_by_subject["name"] == subject.actor.name
    assert [log.op for log in ChangeLog.objects.filter(table="gateway_groups")] == ["insert"] * 2
    assert len(callbacks) == 2


@pytest.mark.parametrize(
    ("name", "message"),
    [("x" * 65, "should be at most 64 character(s)"), ("   ", "can't be blank")],
)
def test_invalid_names_write_nothing(name, message) -> None:
    subject = subject_of("admin", AccountFactory())
    before = _counts()
    with pytest.raises(ValidationFailed) as exc:
        site_create(subject=subject, name=name)
    assert exc.value.errors == {"name": [message]}
    assert _counts() == before


def test_names_are_unique_per_account_and_managed_by() -> None:
    account = AccountFactory()
    subject = subject_of("admin", account)
    site_create_internet(account=account)
    site_create(subject=subject, name="Internet")  # a user site may share the system name
    site_create(subject=subject_of("admin", AccountFactory()), name="Office")
    office = site_create(subject=subject, name="Office")
    before = _counts()
    with pytest.raises(ValidationFailed) as exc:
        site_create(subject=subject, name="Office")
    assert exc.value.errors == {"name": ["has already been taken"]}
    other = site_create(subject=subject, name="Lab")
    with pytest.raises(ValidationFailed):
        site_update(subject=subject, site=other, name="Office")
    assert _counts()[0] == before[0] + 1
    assert office.name == "Office"


def test_site_limit_ignores_the_internet_site_and_disabled_accounts_are_refused() -> None:
    account = AccountFactory(limits={"gateway_groups_count": 1})
    subject = subject_of("admin", account)
    site_create_internet(account=account)
    site_create(subject=subject, name="one")
    with pytest.raises(LimitReached) as exc:
        site_create(subject=subject, name="two")
    assert exc.value.code == "gateway_groups_limit_reached"
    assert Site.objects.filter(account=account).count() == 2

    disabled = AccountFactory(disabled_at="2024-01-01T00:00:00Z")
    with pytest.raises(LimitReached):
        site_create(subject=subject_of("admin", disabled), name="x")


def test_internet_site_is_created_once_and_cannot_be_changed() -> None:
    account = AccountFactory()
    site = site_create_internet(account=account)
    assert site_create_internet(account=account) == site
    assert (site.name, site.managed_by, site.created_by) == ("Internet", "system", "system")
    assert ChangeLog.objects.filter(table="gateway_groups", op="insert").count() == 1
    assert internet_site(account) == site
    subject = subject_of("admin", account)
    with pytest.raises(Refused):
        site_update(subject=subject, site=site, name="Web")
    with pytest.raises(Refused):
        site_delete(subject=subject, site=site)
    assert Site.objects.filter(pk=site.pk, name="Internet").exists()
    with pytest.raises(NotFound):
        internet_site(AccountFactory())


def test_update_records_old_and_new() -> None:
    subject = subject_of("api_client", AccountFactory())
    site = site_create(subject=subject, name="a")
    site_update(subject=subject, site=site.pk, name=" b ")
    log = ChangeLog.objects.filter(table="gateway_groups", op="update").get()
    assert log.old_data is not None
    assert log.data is not None
    assert (log.old_data["name"], log.data["name"]) == ("a", "b")
    assert log.subject is not None
    assert log.subject["actor_type"] == "api_client"


def test_delete_cascades_gateways_tokens_connections_and_flows(
    django_capture_on_commit_callbacks,
) -> None:
    account = AccountFactory()
    subject = subject_of("admin", account)
    site = SiteFactory(account=account)
    gateway = GatewayFactory(group=site)
    issued = site_token_create(subject=subject, site=site)
    flow = flow_for(ClientFactory(account=account), gateway)
    ResourceConnection.objects.create(
        resource=Resource.objects.get(pk=flow.resource_id),
        gateway_group=site,
        account=account,
        created_by="system",
    )
    with django_capture_on_commit_callbacks() as callbacks:
        site_delete(subject=subject, site=site)
    assert not Site.objects.filter(pk=site.pk).exists()
    assert not Gateway.objects.filter(pk=gateway.pk).exists()
    assert not Token.objects.filter(pk=issued.token.pk).exists()
    assert not Flow.objects.filter(pk=flow.pk).exists()
    assert not ResourceConnection.objects.filter(gateway_group_id=site.pk).exists()
    deleted = set(ChangeLog.objects.filter(op="delete").values_list("table", flat=True))
    assert deleted == {"gateway_groups", "gateways", "tokens", "flows", "resource_connections"}
    assert callbacks  # published (and the token's sessions closed) on commit only


def test_other_accounts_sites_are_not_found_and_not_listed() -> None:
    subject = subject_of("admin", AccountFactory())
    mine = SiteFactory(account=subject.account)
    SiteFactory(account=subject.account, internet=True)
    foreign = SiteFactory()
    for action in (
        lambda: site_update(subject=subject, site=foreign, name="x"),
        lambda: site_delete(subject=subject, site=foreign),
        lambda: site_token_create(subject=subject, site=foreign),
        lambda: site_get(subject, site_id=foreign.pk),
        lambda: site_get(subject, site_id="nope"),
    ):
        with pytest.raises(NotFound):
            action()
    assert list(site_list(subject)) == [mine]
    assert {s.name for s in site_list(subject, include_internet=True)} == {mine.name, "Internet"}
    assert Site.objects.filter(pk=foreign.pk).exists()


# --- gateway tokens and connect -------------------------------------------------------------


def test_site_token_authenticates_gateways_of_that_site() -> None:
    subject = subject_of("admin", AccountFactory())
    site = SiteFactory(account=subject.account)
    issued = site_token_create(subject=subject, site=site)
    assert issued.token.type == "gateway_group"
    assert issued.token.expires_at is None
    assert issued.token.gateway_group_id == site.pk
    assert issued.encoded.startswith(".SFMyNTY.")
    found_site, token = gateway_authenticate(issued.encoded, context=Context(type="browser"))
    assert (found_site, token) == (site, issued.token)
    with pytest.raises(Unauthorized):
        gateway_authenticate(issued.encoded + "x", context=GATEWAY_CONTEXT)
    # A token of another type never verifies as a gateway token.
    client_token = token_create(type="client", account=subject.account, actor=subject.actor)
    with pytest.raises(Unauthorized):
        gateway_authenticate(client_token.encoded, context=GATEWAY_CONTEXT)


def _connect(site, token=None, external_id="gw-1", **kwargs) -> Gateway:
    if token is None:
        token = token_create(type="gateway_group", account=site.account, gateway_group=site).token
    kwargs.setdefault("public_key", public_key())
    kwargs.setdefault("context", GATEWAY_CONTEXT)
    return gateway_upsert(site=site, token=token, external_id=external_id, **kwargs)


def test_gateway_upsert_creates_then_refreshes(django_capture_on_commit_callbacks) -> None:
    site = SiteFactory()
    token = token_create(type="gateway_group", account=site.account, gateway_group=site).token
    with django_capture_on_commit_callbacks() as callbacks:
        gateway = _connect(site, token)
    assert len(gateway.name) == 5
    assert gateway.last_seen_version == "1.3.2"
    assert gateway.last_seen_remote_ip == "198.51.100.4"
    assert ipaddress.ip_address(str(gateway.ipv4)) in ipaddress.ip_network("100.64.0.0/11")
    assert ipaddress.ip_address(str(gateway.ipv6)) in ipaddress.ip_network("fd00:2021:1111::/107")
    assert len(callbacks) == 1

    key = public_key()
    again = _connect(site, token, public_key=key)
    assert again.pk == gateway.pk
    assert (again.name, again.ipv4, again.ipv6) == (gateway.name, gateway.ipv4, gateway.ipv6)
    assert again.public_key == key
    renamed = _connect(site, token, public_key=key, name=" edge-1 ")
    assert renamed.name == "edge-1"
    ops = list(
        ChangeLog.objects.filter(table="gateways").order_by("lsn").values_list("op", flat=True)
    )
    assert ops == ["insert", "update", "update"]
    entry = ChangeLog.objects.filter(table="gateways").first()
    assert entry is not None and entry.subject is None  # system path


def test_gateway_addresses_do_not_collide_with_clients() -> None:
    site = SiteFactory()
    client = ClientFactory(account=site.account)
    from gateways.services.clients import allocate_missing_addresses

    allocate_missing_addresses(client)
    gateway = _connect(site)
    assert {gateway.ipv4, gateway.ipv6}.isdisjoint({client.ipv4, client.ipv6})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"public_key": "short"}, "public_key"),
        ({"external_id": ""}, "external_id"),
        ({"name": "n" * 256}, "name"),
        (
            {"context": dataclasses.replace(GATEWAY_CONTEXT, user_agent="curl/8.0")},
            "last_seen_user_agent",
        ),
    ],
)
def test_gateway_bad_input_writes_nothing(kwargs, field) -> None:
    site = SiteFactory()
    token = token_create(type="gateway_group", account=site.account, gateway_group=site).token
    before = Gateway.objects.count(), ChangeLog.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        _connect(site, token, **kwargs)
    assert field in exc.value.errors
    assert (Gateway.objects.count(), ChangeLog.objects.count()) == before


def test_gateway_public_key_is_unique_per_account_and_token_must_match_site() -> None:
    site = SiteFactory()
    other_site = SiteFactory(account=site.account)
    first = _connect(site)
    with pytest.raises(ValidationFailed) as exc:
        _connect(other_site, public_key=first.public_key)
    assert exc.value.errors == {"public_key": ["has already been taken"]}
    token = token_create(type="gateway_group", account=site.account, gateway_group=site).token
    with pytest.raises(Unauthorized):
        _connect(other_site, token, external_id="gw-2")
    assert Gateway.objects.count() == 1


# --- gateway management and queries ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_gateway_management_per_actor_type(kind) -> None:
    account = AccountFactory()
    subject = subject_of(kind, account)
    gateway = GatewayFactory(group=SiteFactory(account=account))
    if MANAGES[kind]:
        gateway_delete(subject=subject, gateway=gateway.pk)
        assert not Gateway.objects.exists()
    else:
        with pytest.raises(Unauthorized):
            gateway_delete(subject=subject, gateway=gateway)
        assert gateway_get(subject, gateway_id=gateway.pk) == gateway  # gateway:connect


def test_gateway_delete_removes_flows_and_foreign_gateways_are_not_found() -> None:
    subject = subject_of("admin", AccountFactory())
    gateway = GatewayFactory(group=SiteFactory(account=subject.account))
    flow = flow_for(ClientFactory(account=subject.account), gateway)
    foreign = GatewayFactory()
    for action in (
        lambda: gateway_delete(subject=subject, gateway=foreign),
        lambda: gateway_get(subject, gateway_id=foreign.pk),
    ):
        with pytest.raises(NotFound):
            action()
    gateway_delete(subject=subject, gateway=gateway)
    assert not Flow.objects.filter(pk=flow.pk).exists()
    tables = list(ChangeLog.objects.filter(op="delete").values_list("table", flat=True))
    assert tables == ["flows", "gateways"]
    assert Gateway.objects.filter(pk=foreign.pk).exists()


def test_gateway_list_filters_by_site_and_account() -> None:
    subject = subject_of("account_user", AccountFactory())
    one, two = SiteFactory(account=subject.account), SiteFactory(account=subject.account)
    a, b = GatewayFactory(group=one), GatewayFactory(group=two)
    GatewayFactory()
    assert list(gateway_list(subject)) == [a, b]
    assert list(gateway_list(subject, site=two)) == [b]
    assert list(gateway_list(subject, site="bad")) == []
