"""Clients (domain.md §2.8): upsert on connect, verification, rename, delete, scoped queries."""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.auth import Context
from accounts.models import Token
from accounts.tests.factories import AccountFactory, ActorFactory
from firezone.errors import NotFound, Unauthorized, ValidationFailed
from firezone.models import ChangeLog
from gateways.models import Client, NetworkAddress
from gateways.selectors.clients import client_get, client_list, client_list_for_actor
from gateways.services.clients import (
    client_delete,
    client_remove_verification,
    client_update,
    client_upsert,
    client_verify,
)
from gateways.tests.factories import (
    ClientFactory,
    device_context,
    flow_for,
    public_key,
    subject_of,
)
from resources.models import Flow

pytestmark = pytest.mark.django_db

KINDS = ["admin", "api_client", "account_user", "service_account"]


def _upsert(subject, external_id="device-1", **kwargs) -> Client:
    kwargs.setdefault("public_key", public_key())
    return client_upsert(subject=subject, external_id=external_id, **kwargs)


def _logs(table="clients", **filters):
    return list(ChangeLog.objects.filter(table=table, **filters).order_by("lsn"))


def _rows() -> tuple[int, int, int]:
    return Client.objects.count(), NetworkAddress.objects.count(), ChangeLog.objects.count()


# --- upsert ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_actor_type_upserts_its_own_client(kind) -> None:
    subject = subject_of(kind, AccountFactory())
    client = _upsert(subject)
    assert client.actor_id == subject.actor_id
    assert client.account_id == subject.account_id
    # Users' clients are bound to their identity; service accounts and API clients have none.
    assert client.identity_id == (subject.identity.pk if subject.identity else None)


def test_upsert_fills_defaults_addresses_and_last_seen(django_capture_on_commit_callbacks) -> None:
    context = device_context(
        remote_ip_location_region="DE",
        remote_ip_location_city="Berlin",
        remote_ip_location_lat=52.5,
        remote_ip_location_lon=13.4,
    )
    subject = subject_of("account_user", AccountFactory(), context=context)
    key = public_key()
    with django_capture_on_commit_callbacks() as callbacks:
        client = client_upsert(subject=subject, external_id="  ext-1  ", public_key=key)
    assert client.external_id == "ext-1"
    assert 1 <= len(client.name) <= 15
    assert client.public_key == key
    assert client.last_seen_version == "1.3.0"
    assert client.last_seen_user_agent == context.user_agent
    assert client.last_seen_remote_ip == "203.0.113.7"
    assert client.last_seen_remote_ip_location_city == "Berlin"
    assert client.last_seen_remote_ip_location_lat == 52.5
    assert client.last_seen_at is not None
    assert len(bytes(client.psk_base)) == 32
    assert ipaddress.ip_address(str(client.ipv4)) in ipaddress.ip_network("100.64.0.0/11")
    assert ipaddress.ip_address(str(client.ipv6)) in ipaddress.ip_network("fd00:2021:1111::/107")
    [log] = _logs()
    assert log.op == "insert" and log.data["ipv4"] == client.ipv4
    assert log.account_id == subject.account_id
    assert len(callbacks) == 1  # published after commit only


def test_reconnect_updates_the_same_row_and_keeps_name_and_addresses() -> None:
    subject = subject_of("account_user", AccountFactory())
    first = _upsert(subject, name="My Laptop")
    new_key = public_key()
    later = dataclasses.replace(subject, context=device_context("Mac apple-client/1.4.1"))
    second = _upsert(later, name="Other name", public_key=new_key)
    assert second.pk == first.pk
    assert second.name == "My Laptop"
    assert (second.ipv4, second.ipv6) == (first.ipv4, first.ipv6)
    assert second.public_key == new_key
    assert second.last_seen_version == "1.4.1"
    assert NetworkAddress.objects.count() == 2
    assert [log.op for log in _logs()] == ["insert", "update"]
    update = _logs()[-1]
    assert update.old_data["public_key"] == first.public_key
    assert update.data["public_key"] == new_key


def test_external_id_is_per_actor() -> None:
    account = AccountFactory()
    one, two = subject_of("account_user", account), subject_of("account_user", account)
    assert _upsert(one).pk != _upsert(two).pk
    assert Client.objects.count() == 2
    assert len({c.ipv4 for c in Client.objects.all()}) == 2


def _verified(subject, **hardware) -> Client:
    client = _upsert(subject, **hardware)
    admin = subject_of("admin", subject.account)
    return client_verify(subject=admin, client=client)


def test_reconnect_keeps_verification_when_hardware_ids_match_or_were_unknown() -> None:
    subject = subject_of("account_user", AccountFactory())
    client = _verified(subject, device_serial="SN1")
    flow = flow_for(client)
    again = _upsert(subject, public_key=client.public_key, device_serial="SN1", device_uuid="U")
    assert again.verified_at == client.verified_at
    assert again.device_uuid == "U"
    assert Flow.objects.filter(pk=flow.pk).exists()


@pytest.mark.parametrize(
    "hardware", [{"device_serial": "SN2"}, {}, {"device_serial": "SN1", "device_uuid": None}]
)
def test_reconnect_with_changed_hardware_id_drops_verification_and_flows(hardware) -> None:
    subject = subject_of("account_user", AccountFactory())
    client = _verified(subject, device_serial="SN1", device_uuid="U1")
    flow = flow_for(client)
    again = _upsert(subject, public_key=client.public_key, **hardware)
    assert (again.verified_at, again.verified_by, again.verified_by_subject) == (None, None, None)
    assert not Flow.objects.filter(pk=flow.pk).exists()
    assert _logs("flows", op="delete")[0].old_data["id"] == str(flow.pk)


@pytest.mark.parametrize(
    ("kwargs", "context", "field"),
    [
        ({"public_key": "too-short"}, None, "public_key"),
        ({"public_key": "!" * 44}, None, "public_key"),
        ({"public_key": ""}, None, "public_key"),
        ({"external_id": "   "}, None, "external_id"),
        ({"name": "x" * 256}, None, "name"),
        ({"name": "  "}, None, "name"),
        ({"device_serial": "s" * 256}, None, "device_serial"),
        ({}, device_context("Mozilla/5.0"), "last_seen_user_agent"),
        ({}, device_context(remote_ip=None), "last_seen_remote_ip"),
    ],
)
def test_bad_input_writes_nothing(
    kwargs, context, field, django_capture_on_commit_callbacks
) -> None:
    subject = subject_of("account_user", AccountFactory())
    if context is not None:
        subject = dataclasses.replace(subject, context=context)
    before = _rows()
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ValidationFailed) as exc:
        _upsert(subject, **kwargs)
    assert field in exc.value.errors
    assert _rows() == before
    assert callbacks == []


def test_public_key_of_another_client_of_the_actor_is_taken() -> None:
    subject = subject_of("account_user", AccountFactory())
    first = _upsert(subject, external_id="a")
    before = _rows()
    with pytest.raises(ValidationFailed) as exc:
        _upsert(subject, external_id="b", public_key=first.public_key)
    assert exc.value.errors == {"public_key": ["has already been taken"]}
    assert _rows() == before


def test_expired_subject_is_refused() -> None:
    subject = subject_of("account_user", AccountFactory())
    expired = dataclasses.replace(subject, expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Unauthorized) as exc:
        _upsert(expired)
    assert exc.value.reason == "subject_expired"


# --- update / verify / delete ---------------------------------------------------------------

# Which actor types may act on *another* actor's client of their account.
MANAGE_OTHERS = {"admin": True, "api_client": True, "account_user": False, "service_account": False}
VERIFY = MANAGE_OTHERS


@pytest.mark.parametrize("kind", KINDS)
def test_update_own_and_others_per_actor_type(kind) -> None:
    account = AccountFactory()
    subject = subject_of(kind, account)
    own = ClientFactory(actor=subject.actor)
    assert client_update(subject=subject, client=own, name="  Renamed ").name == "Renamed"
    other = ClientFactory(actor=ActorFactory(account=account))
    if MANAGE_OTHERS[kind]:
        assert client_update(subject=subject, client=other.pk, name="Theirs").name == "Theirs"
    else:
        with pytest.raises(Unauthorized):
            client_update(subject=subject, client=other, name="Theirs")
        other.refresh_from_db()
        assert other.name != "Theirs"


def test_update_records_the_change_and_rejects_blank_names() -> None:
    subject = subject_of("admin", AccountFactory())
    client = ClientFactory(account=subject.account, actor=subject.actor, name="old")
    client_update(subject=subject, client=client, name="new")
    [log] = _logs()
    assert (log.op, log.old_data["name"], log.data["name"]) == ("update", "old", "new")
    assert log.subject["actor_id"] == str(subject.actor_id)
    with pytest.raises(ValidationFailed):
        client_update(subject=subject, client=client, name=" ")
    client.refresh_from_db()
    assert client.name == "new"


@pytest.mark.parametrize(
    "action",
    [
        lambda s, c: client_update(subject=s, client=c, name="x"),
        lambda s, c: client_verify(subject=s, client=c),
        lambda s, c: client_remove_verification(subject=s, client=c),
        lambda s, c: client_delete(subject=s, client=c),
        lambda s, c: client_get(s, client_id=c.pk),
    ],
)
def test_other_accounts_client_is_not_found(action) -> None:
    subject = subject_of("admin", AccountFactory())
    foreign = ClientFactory()
    with pytest.raises(NotFound):
        action(subject, foreign)
    assert Client.objects.filter(pk=foreign.pk).exists()


@pytest.mark.parametrize("bad_id", ["not-a-uuid", None, "00000000-0000-0000-0000-000000000000"])
def test_missing_or_malformed_ids_are_not_found(bad_id) -> None:
    subject = subject_of("admin", AccountFactory())
    with pytest.raises(NotFound):
        client_get(subject, client_id=bad_id)
    with pytest.raises(NotFound):
        client_delete(subject=subject, client=bad_id)


@pytest.mark.parametrize("kind", KINDS)
def test_verify_requires_client_verify(kind) -> None:
    subject = subject_of(kind, AccountFactory())
    own = ClientFactory(actor=subject.actor)
    if VERIFY[kind]:
        client = client_verify(subject=subject, client=own)
        assert client.verified_at is not None
        assert client.verified_by == ("identity" if subject.identity else "actor")
        assert client.verified_by_subject is not None
        assert client.verified_by_subject["name"] == subject.actor.name
    else:
        with pytest.raises(Unauthorized):
            client_verify(subject=subject, client=own)
        own.refresh_from_db()
        assert own.verified_at is None


def test_verify_is_idempotent_and_removing_it_deletes_flows() -> None:
    subject = subject_of("admin", AccountFactory())
    client = ClientFactory(account=subject.account)
    verified = client_verify(subject=subject, client=client)
    again = client_verify(subject=subject, client=client)
    assert again.verified_at == verified.verified_at
    assert len(_logs()) == 1
    flow = flow_for(client)
    cleared = client_remove_verification(subject=subject, client=client)
    assert cleared.verified_at is None and cleared.verified_by_subject is None
    assert not Flow.objects.filter(pk=flow.pk).exists()
    assert [(log.table, log.op) for log in ChangeLog.objects.order_by("lsn")][-2:] == [
        ("flows", "delete"),
        ("clients", "update"),
    ]


def test_delete_cascades_flows_keeps_the_token_and_publishes_on_commit(
    django_capture_on_commit_callbacks,
) -> None:
    subject = subject_of("account_user", AccountFactory())
    client = _upsert(subject)
    flow = flow_for(client)
    token_id = flow.token_id
    with django_capture_on_commit_callbacks() as callbacks:
        client_delete(subject=subject, client=client)
    assert not Client.objects.filter(pk=client.pk).exists()
    assert not Flow.objects.filter(pk=flow.pk).exists()
    assert Token.objects.filter(pk=token_id).exists()
    # Addresses are never released.
    assert NetworkAddress.objects.filter(address=client.ipv4).exists()
    deletes = [(log.table, log.op) for log in ChangeLog.objects.filter(op="delete")]
    assert deletes == [("flows", "delete"), ("clients", "delete")]
    assert len(callbacks) == 2


# --- selectors ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_list_scopes_per_actor_type(kind) -> None:
    account = AccountFactory()
    subject = subject_of(kind, account)
    now = timezone.now()
    own_old = ClientFactory(actor=subject.actor, last_seen_at=now - timedelta(hours=2))
    own_new = ClientFactory(actor=subject.actor, last_seen_at=now)
    other = ClientFactory(account=account, last_seen_at=now - timedelta(hours=1))
    ClientFactory()  # another account
    listed = list(client_list(subject))
    if MANAGE_OTHERS[kind]:
        assert listed == [own_new, other, own_old]
        assert client_get(subject, client_id=other.pk) == other
        assert list(client_list_for_actor(subject, actor_id=other.actor_id)) == [other]
    else:
        assert listed == [own_new, own_old]
        with pytest.raises(NotFound):
            client_get(subject, client_id=other.pk)
        assert list(client_list_for_actor(subject, actor_id=other.actor_id)) == []
    assert list(client_list_for_actor(subject, actor_id=subject.actor_id)) == [own_new, own_old]


def test_gateway_and_relay_contexts_have_no_client_permissions() -> None:
    # A subject is always an actor: make sure a subject without permissions is refused.
    subject = subject_of("account_user", AccountFactory())
    nobody = dataclasses.replace(subject, permissions=frozenset(), context=Context())
    with pytest.raises(Unauthorized):
        client_list(nobody)
    with pytest.raises(Unauthorized):
        _upsert(nobody)
