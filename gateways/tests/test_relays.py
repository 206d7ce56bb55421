"""Relay groups and relays (domain.md §2.11): self-hosted groups, global groups, connect."""

from __future__ import annotations

import dataclasses

import pytest

from accounts.auth import Context
from accounts.models import Token
from accounts.tests.factories import AccountFactory
from firezone.errors import NotFound, Refused, Unauthorized, ValidationFailed
from firezone.models import ChangeLog
from gateways.models import Relay, RelayGroup
from gateways.selectors.relays import relay_get, relay_group_get, relay_group_list, relay_list
from gateways.services.relays import (
    relay_authenticate,
    relay_delete,
    relay_group_create,
    relay_group_create_global,
    relay_group_delete,
    relay_group_token_create,
    relay_group_token_create_global,
    relay_group_update,
    relay_upsert,
)
from gateways.tests.factories import RELAY_UA, RelayFactory, RelayGroupFactory, subject_of

pytestmark = pytest.mark.django_db

KINDS = ["admin", "api_client", "account_user", "service_account"]
RELAY_CONTEXT = Context(type="relay_group", user_agent=RELAY_UA, remote_ip="192.0.2.10")


def _counts() -> tuple[int, int, int, int]:
    return (
        RelayGroup.objects.count(),
        Relay.objects.count(),
        Token.objects.count(),
        ChangeLog.objects.count(),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_only_admins_manage_relays(kind) -> None:
    account = AccountFactory()
    subject = subject_of(kind, account)
    group = RelayGroupFactory(account=account)
    relay = RelayFactory(group=group)
    actions = [
        lambda: relay_group_list(subject),
        lambda: relay_group_get(subject, group_id=group.pk),
        lambda: relay_list(subject),
        lambda: relay_group_create(subject=subject, name="new"),
        lambda: relay_group_update(subject=subject, group=group, name="renamed"),
        lambda: relay_group_token_create(subject=subject, group=group),
        lambda: relay_delete(subject=subject, relay=relay),
        lambda: relay_group_delete(subject=subject, group=group),
    ]
    if kind == "admin":
        for action in actions:
            action()
        assert list(RelayGroup.objects.values_list("name", flat=True)) == ["new"]
    else:
        before = _counts()
        for action in actions:
            with pytest.raises(Unauthorized):
                action()
        assert _counts() == before


def test_create_requires_the_self_hosted_relays_feature() -> None:
    account = AccountFactory(features={"self_hosted_relays": False})
    subject = subject_of("admin", account)
    before = _counts()
    with pytest.raises(Refused) as exc:
        relay_group_create(subject=subject, name="mine")
    assert exc.value.code == "feature_not_enabled"
    assert _counts() == before


def test_create_validates_names_and_records_the_change() -> None:
    subject = subject_of("admin", AccountFactory())
    group = relay_group_create(subject=subject)
    assert group.account_id == subject.account_id and group.name
    assert group.created_by == "identity"
    named = relay_group_create(subject=subject, name="  Edge  ")
    assert named.name == "Edge"
    before = _counts()
    for name, message in [
        ("Edge", "has already been taken"),
        ("x" * 65, "should be at most 64 character(s)"),
        (" ", "can't be blank"),
    ]:
        with pytest.raises(ValidationFailed) as exc:
            relay_group_create(subject=subject, name=name)
        assert exc.value.errors == {"name": [message]}
    assert _counts() == before
    # Names are per account: another account may reuse it, and so may a global group.
    relay_group_create(subject=subject_of("admin", AccountFactory()), name="Edge")
    relay_group_create_global(name="Edge")
    assert ChangeLog.objects.filter(table="relay_groups", op="insert").count() == 4


def test_global_groups_are_visible_but_read_only() -> None:
    subject = subject_of("admin", AccountFactory())
    global_group = relay_group_create_global(name="Firezone")
    assert global_group.account_id is None and global_group.created_by == "system"
    with pytest.raises(ValidationFailed):
        relay_group_create_global(name="Firezone")
    mine = RelayGroupFactory(account=subject.account)
    RelayGroupFactory()  # another account
    assert list(relay_group_list(subject)) == [global_group, mine]
    assert relay_group_get(subject, group_id=global_group.pk) == global_group
    for action in (
        lambda: relay_group_update(subject=subject, group=global_group, name="x"),
        lambda: relay_group_delete(subject=subject, group=global_group),
        lambda: relay_group_token_create(subject=subject, group=global_group),
    ):
        with pytest.raises(Unauthorized):
            action()
    global_relay = RelayFactory(group=global_group)
    with pytest.raises(Unauthorized):
        relay_delete(subject=subject, relay=global_relay)
    assert RelayGroup.objects.filter(pk=global_group.pk, name="Firezone").exists()
    assert Relay.objects.filter(pk=global_relay.pk).exists()


def test_other_accounts_groups_and_relays_are_not_found() -> None:
    subject = subject_of("admin", AccountFactory())
    foreign = RelayGroupFactory()
    foreign_relay = RelayFactory(group=foreign)
    for action in (
        lambda: relay_group_get(subject, group_id=foreign.pk),
        lambda: relay_group_update(subject=subject, group=foreign, name="x"),
        lambda: relay_group_delete(subject=subject, group=foreign),
        lambda: relay_group_token_create(subject=subject, group=foreign),
        lambda: relay_delete(subject=subject, relay=foreign_relay),
        lambda: relay_get(subject, relay_id=foreign_relay.pk),
        lambda: relay_group_get(subject, group_id="junk"),
    ):
        with pytest.raises(NotFound):
            action()
    assert list(relay_list(subject)) == []
    assert Relay.objects.filter(pk=foreign_relay.pk).exists()


def test_group_delete_cascades_relays_and_tokens(django_capture_on_commit_callbacks) -> None:
    subject = subject_of("admin", AccountFactory())
    group = relay_group_create(subject=subject, name="edge")
    relay_group_update(subject=subject, group=group.pk, name="edge-2")
    issued = relay_group_token_create(subject=subject, group=group)
    relay = RelayFactory(group=group)
    with django_capture_on_commit_callbacks() as callbacks:
        relay_group_delete(subject=subject, group=group)
    assert not Relay.objects.filter(pk=relay.pk).exists()
    assert not Token.objects.filter(pk=issued.token.pk).exists()
    deleted = set(ChangeLog.objects.filter(op="delete").values_list("table", flat=True))
    assert deleted == {"relay_groups", "relays", "tokens"}
    assert callbacks


# --- tokens and connect ---------------------------------------------------------------------


def test_account_and_global_tokens_authenticate_their_groups() -> None:
    subject = subject_of("admin", AccountFactory())
    group = relay_group_create(subject=subject, name="edge")
    issued = relay_group_token_create(subject=subject, group=group)
    assert (issued.token.type, issued.token.expires_at) == ("relay_group", None)
    assert relay_authenticate(issued.encoded, context=RELAY_CONTEXT) == (group, issued.token)

    global_group = relay_group_create_global(name="global")
    global_token = relay_group_token_create_global(group=global_group)
    assert global_token.token.account_id is None
    found, token = relay_authenticate(global_token.encoded, context=Context(type="browser"))
    assert (found, token) == (global_group, global_token.token)
    with pytest.raises(NotFound):
        relay_group_token_create_global(group=group)
    with pytest.raises(Unauthorized):
        relay_authenticate(issued.encoded[:-2], context=RELAY_CONTEXT)


def _global_group_and_token():
    group = relay_group_create_global()
    return group, relay_group_token_create_global(group=group).token


def test_relay_upsert_inserts_then_updates_by_address_and_port() -> None:
    group, token = _global_group_and_token()
    relay = relay_upsert(group=group, token=token, ipv4="192.0.2.1", context=RELAY_CONTEXT)
    assert (relay.port, relay.last_seen_version, relay.account_id) == (3478, "1.3.0", None)
    again = relay_upsert(
        group=group,
        token=token,
        ipv4="192.0.2.1",
        ipv6="2001:db8::1",
        name="r1",
        context=dataclasses.replace(RELAY_CONTEXT, user_agent="relay/1.4.0"),
    )
    assert again.pk == relay.pk
    assert (again.ipv6, again.name, again.last_seen_version) == ("2001:db8::1", "r1", "1.4.0")
    other_port = relay_upsert(
        group=group, token=token, ipv4="192.0.2.1", port=3479, context=RELAY_CONTEXT
    )
    v6_only = relay_upsert(group=group, token=token, ipv6="2001:db8::9", context=RELAY_CONTEXT)
    assert len({relay.pk, other_port.pk, v6_only.pk}) == 3
    ops = list(
        ChangeLog.objects.filter(table="relays").order_by("lsn").values_list("op", flat=True)
    )
    assert ops == ["insert", "update", "insert", "insert"]


def test_account_and_global_relays_are_keyed_separately() -> None:
    subject = subject_of("admin", AccountFactory())
    group = relay_group_create(subject=subject, name="edge")
    token = relay_group_token_create(subject=subject, group=group).token
    mine = relay_upsert(group=group, token=token, ipv4="192.0.2.1", context=RELAY_CONTEXT)
    global_group, global_token = _global_group_and_token()
    shared = relay_upsert(
        group=global_group, token=global_token, ipv4="192.0.2.1", context=RELAY_CONTEXT
    )
    assert mine.pk != shared.pk and mine.account_id == subject.account_id
    assert list(relay_list(subject)) == [shared, mine]  # global first
    assert list(relay_list(subject, group=group)) == [mine]
    relay_delete(subject=subject, relay=mine)
    assert not Relay.objects.filter(pk=mine.pk).exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "ipv4"),
        ({"ipv4": "2001:db8::1"}, "ipv4"),
        ({"ipv4": "999.1.1.1"}, "ipv4"),
        ({"ipv6": "192.0.2.1"}, "ipv6"),
        ({"ipv4": "192.0.2.1", "port": 0}, "port"),
        ({"ipv4": "192.0.2.1", "port": 65536}, "port"),
        ({"ipv4": "192.0.2.1", "port": "http"}, "port"),
        ({"ipv4": "192.0.2.1", "name": "n" * 256}, "name"),
        (
            {"ipv4": "192.0.2.1", "context": dataclasses.replace(RELAY_CONTEXT, user_agent="x")},
            "last_seen_user_agent",
        ),
    ],
)
def test_relay_bad_input_writes_nothing(kwargs, field) -> None:
    group, token = _global_group_and_token()
    kwargs.setdefault("context", RELAY_CONTEXT)
    before = _counts()
    with pytest.raises(ValidationFailed) as exc:
        relay_upsert(group=group, token=token, **kwargs)
    assert field in exc.value.errors
    assert _counts() == before


def test_relay_upsert_requires_the_groups_token() -> None:
    group, _ = _global_group_and_token()
    _, other_token = _global_group_and_token()
    with pytest.raises(Unauthorized):
        relay_upsert(group=group, token=other_token, ipv4="192.0.2.1", context=RELAY_CONTEXT)
    assert not Relay.objects.exists()
