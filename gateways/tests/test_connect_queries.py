"""The cost of a device connect (`gateways.connect.authenticate_client / _gateway`).

Counted with `CaptureQueriesContext` outside any test transaction (`transaction=True`), as
daphne runs them: BEGIN / COMMIT (and any savepoint) count. A known device reconnecting with
nothing but its last-seen data changed costs at most `KNOWN_DEVICE_QUERIES` statements and
leaves no change-log row: the admin pages hear of it on `portal.<account_id>` only.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.auth import Context
from accounts.models import Token
from accounts.request import ConnectContext
from accounts.services.tokens import authenticate, token_create, token_use
from accounts.tests.factories import ActorFactory
from firezone import changes
from firezone.errors import Unauthorized
from firezone.models import ChangeLog
from firezone.phoenix.rejection import ConnectRejected
from gateways.connect import authenticate_client, authenticate_gateway, authenticate_relay
from gateways.models import Client, Gateway, Relay, Site
from gateways.services.clients import client_verify
from gateways.tests.factories import flow_for, public_key, subject_of
from gateways.tests.sockets import GATEWAY_UA, RELAY_UA, World, make_world
from resources.models import Flow
from tests.live import CONNLIB_UA

pytestmark = pytest.mark.django_db(transaction=True)

# Token row with actor, account, identity and provider; last-seen UPDATE of token and identity;
# BEGIN; the upsert (lock, update, return the previous row); COMMIT.
KNOWN_DEVICE_QUERIES = 5
# ... plus two addresses (pick + insert each), storing them, and the change-log row.
NEW_DEVICE_QUERIES = 11

CLIENT_CTX = ConnectContext(user_agent=CONNLIB_UA, remote_ip="203.0.113.9", version="1.3.0")
GATEWAY_CTX = ConnectContext(user_agent=GATEWAY_UA, remote_ip="198.51.100.9", version="1.4.17")


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def sent(monkeypatch) -> list[tuple[list[str], dict[str, Any]]]:
    """What a connect publishes: ("recorded", (table, op)) for every change recorded through
    `firezone.changes.record` (change log, account group, device stream), and (groups, message)
    for every `send_after_commit` / `send_seen_after_commit` to a portal group."""
    published: list[tuple[Any, Any]] = []
    record = changes.record

    def recording(**kwargs: Any) -> Any:
        published.append(("recorded", (kwargs["table"], kwargs["op"])))
        return record(**kwargs)

    send_after_commit = changes.send_after_commit

    def sending(groups: Any, message: dict[str, Any]) -> None:
        groups = list(groups)
        if any(group.startswith("portal.") for group in groups):
            published.append((groups, message))
        else:  # what `record` itself may send
            send_after_commit(groups, message)

    monkeypatch.setattr(changes, "record", recording)
    monkeypatch.setattr(changes, "send_after_commit", sending)
    monkeypatch.setattr(
        changes, "send_seen_after_commit", lambda group, message: sending([group], message)
    )
    return published


def _logs(table: str) -> list[tuple[str, str]]:
    return [(log.table, log.op) for log in ChangeLog.objects.filter(table=table).order_by("lsn")]


def _connect(fn, params: dict[str, str], ctx: ConnectContext) -> tuple[Any, int]:
    with CaptureQueriesContext(connection) as queries:
        result = fn(params, ctx)
    return result, len(queries.captured_queries)


# --- clients ------------------------------------------------------------------------------------


def test_new_client_then_known_client_reconnects(world, sent) -> None:
    params = world.client_params()
    (subject, client), count = _connect(authenticate_client, params, CLIENT_CTX)
    assert count <= NEW_DEVICE_QUERIES
    assert client.ipv4 and client.ipv6
    assert _logs("clients") == [("clients", "insert")]
    assert sent == [("recorded", ("clients", "insert"))]

    sent.clear()
    later = ConnectContext(user_agent=CONNLIB_UA, remote_ip="203.0.113.10", city="Kyiv")
    (subject, again), count = _connect(authenticate_client, params, later)
    assert count <= KNOWN_DEVICE_QUERIES
    assert again.pk == client.pk and (again.ipv4, again.ipv6) == (client.ipv4, client.ipv6)
    assert again.last_seen_remote_ip == "203.0.113.10"
    assert again.last_seen_remote_ip_location_city == "Kyiv"
    assert subject.identity.pk == world.identity.pk and subject.actor.pk == world.actor.pk
    # No domain change: nothing in the change log, nothing for devices; the admin pages hear of
    # it on the portal group, in the shape of a change that is not in the change log.
    assert _logs("clients") == [("clients", "insert")]
    [(groups, message)] = sent
    assert groups == [f"portal.{world.account.pk}"]
    change = changes.Change.from_message(message)
    assert (change.lsn, change.table, change.op) == (0, "clients", "update")
    assert change.new is not None
    assert change.new["id"] == str(client.pk)
    assert change.old is not None
    assert change.old["last_seen_remote_ip"] == "203.0.113.9"
    assert change.new["last_seen_remote_ip"] == "203.0.113.10"

    stored = Client.objects.get(pk=client.pk)
    assert stored.last_seen_remote_ip == "203.0.113.10"
    token = Token.objects.get(pk=world.client_token_row.pk)
    assert token.last_seen_remote_ip == "203.0.113.10" and token.last_seen_user_agent == CONNLIB_UA
    world.identity.refresh_from_db()
    assert world.identity.last_seen_remote_ip == "203.0.113.10"


def test_client_reconnect_with_a_new_public_key_is_a_change(world, sent) -> None:
    params = world.client_params()
    authenticate_client(params, CLIENT_CTX)
    sent.clear()
    (_, client), count = _connect(
        authenticate_client, {**params, "public_key": public_key()}, CLIENT_CTX
    )
    assert count <= KNOWN_DEVICE_QUERIES + 1  # the change-log row
    assert _logs("clients") == [("clients", "insert"), ("clients", "update")]
    last = ChangeLog.objects.filter(table="clients").last()
    assert last is not None and last.data is not None
    assert last.data["public_key"] == client.public_key
    assert sent == [("recorded", ("clients", "update"))]


def test_client_hardware_id_change_drops_verification_and_flows(world, sent) -> None:
    params = world.client_params(device_serial="SN1")
    _, client = authenticate_client(params, CLIENT_CTX)
    client = client_verify(subject=subject_of("admin", world.account), client=client)
    flow = flow_for(client)

    # Same hardware: verification and flows stay, nothing recorded.
    ChangeLog.objects.all().delete()
    _, same = authenticate_client(params, CLIENT_CTX)
    assert same.verified_at == client.verified_at
    assert Flow.objects.filter(pk=flow.pk).exists()
    assert not ChangeLog.objects.exists()

    _, moved = authenticate_client({**params, "device_serial": "SN2"}, CLIENT_CTX)
    assert (moved.verified_at, moved.verified_by, moved.verified_by_subject) == (None, None, None)
    assert not Flow.objects.filter(pk=flow.pk).exists()
    assert [(log.table, log.op) for log in ChangeLog.objects.order_by("lsn")] == [
        ("flows", "delete"),
        ("clients", "update"),
    ]
    update = ChangeLog.objects.get(table="clients")
    assert update.old_data is not None
    assert update.data is not None
    assert update.old_data["verified_at"] is not None and update.data["verified_at"] is None
    assert update.subject is not None
    assert update.subject["identity_id"] == str(world.identity.pk)
    assert sent[-2:] == [("recorded", ("flows", "delete")), ("recorded", ("clients", "update"))]


def test_client_public_key_taken_is_a_422_and_leaves_the_connection_usable(world) -> None:
    _, first = authenticate_client(world.client_params(), CLIENT_CTX)
    with pytest.raises(ConnectRejected) as exc:
        authenticate_client(world.client_params(public_key=first.public_key), CLIENT_CTX)
    assert (exc.value.status, exc.value.body) == (
        422,
        "Invalid or missing connection parameters: public_key: has already been taken\n",
    )
    assert Client.objects.count() == 1
    _, second = authenticate_client(world.client_params(), CLIENT_CTX)
    assert Client.objects.count() == 2 and second.pk != first.pk


def test_service_account_client_connect(world) -> None:
    actor = ActorFactory(account=world.account, type="service_account")
    issued = token_create(type="client", account=world.account, actor=actor)
    params = world.client_params(token=issued.encoded)
    authenticate_client(params, CLIENT_CTX)
    (subject, client), count = _connect(authenticate_client, params, CLIENT_CTX)
    assert count <= KNOWN_DEVICE_QUERIES
    assert subject.identity is None and client.identity_id is None


def test_authenticate_refusals_still_record_the_token_use(world) -> None:
    """A valid token of a disabled actor is refused after its use was recorded, as before."""
    world.actor.disabled_at = world.actor.inserted_at
    world.actor.save()
    with pytest.raises(ConnectRejected) as exc:
        authenticate_client(world.client_params(), CLIENT_CTX)
    assert (exc.value.status, exc.value.body) == (401, "Invalid token")
    token = Token.objects.get(pk=world.client_token_row.pk)
    assert token.last_seen_remote_ip == "203.0.113.9"
    world.identity.refresh_from_db()
    assert world.identity.last_seen_at is None


def test_authenticate_costs_two_statements(world) -> None:
    context = CLIENT_CTX.auth_context("client")
    with CaptureQueriesContext(connection) as queries:
        subject = authenticate(world.client_token, context=context)
        # Everything the subject offers is loaded with it.
        assert subject.account.slug == "acme"
        assert subject.identity is not None
        assert subject.identity.provider.disabled_at is None
        assert subject.identity.actor.pk == world.actor.pk
        assert subject.identity.account.pk == world.account.pk
    assert len(queries.captured_queries) == 2
    assert subject.token_id == world.client_token_row.pk
    assert subject.expires_at == world.client_token_row.expires_at


def test_email_tokens_still_spend_an_attempt_before_comparing(world) -> None:
    issued = token_create(
        type="email",
        account=world.account,
        actor=world.actor,
        identity=world.identity,
        nonce="abcde",
    )
    wrong = "zzzzz" + issued.encoded[len("abcde") :]
    with pytest.raises(Unauthorized):
        token_use(wrong, context=Context(type="email"))
    issued.token.refresh_from_db()
    assert issued.token.remaining_attempts == 2


# --- gateways -----------------------------------------------------------------------------------


def test_new_gateway_then_known_gateway_reconnects(world, sent) -> None:
    params = world.gateway_params()
    (token, site, gateway), count = _connect(authenticate_gateway, params, GATEWAY_CTX)
    assert count <= NEW_DEVICE_QUERIES
    assert site.pk == world.site.pk and gateway.ipv4 and gateway.ipv6
    assert _logs("gateways") == [("gateways", "insert")]
    assert sent == [("recorded", ("gateways", "insert"))]

    sent.clear()
    later = ConnectContext(user_agent=GATEWAY_UA, remote_ip="198.51.100.10")
    (token, site, again), count = _connect(authenticate_gateway, params, later)
    assert count <= KNOWN_DEVICE_QUERIES
    assert site.pk == world.site.pk and token.gateway_group_id == site.pk
    assert again.pk == gateway.pk and again.name == "gw-1"
    assert again.last_seen_remote_ip == "198.51.100.10"
    assert _logs("gateways") == [("gateways", "insert")]
    [(groups, message)] = sent
    assert groups == [f"portal.{world.account.pk}"]
    change = changes.Change.from_message(message)
    assert (change.lsn, change.table, change.op) == (0, "gateways", "update")
    assert change.new is not None
    assert change.new["id"] == str(gateway.pk)
    assert "psk_base" not in change.new
    assert Gateway.objects.get(pk=gateway.pk).last_seen_remote_ip == "198.51.100.10"
    assert Token.objects.get(pk=token.pk).last_seen_remote_ip == "198.51.100.10"


def test_gateway_rename_or_new_key_is_a_change(world, sent) -> None:
    params = world.gateway_params()
    authenticate_gateway(params, GATEWAY_CTX)
    _, _, renamed = authenticate_gateway({**params, "name": "edge-1"}, GATEWAY_CTX)
    assert renamed.name == "edge-1"
    # Without a name the gateway keeps its own: a last-seen-only reconnect.
    _, _, kept = authenticate_gateway({k: v for k, v in params.items() if k != "name"}, GATEWAY_CTX)
    assert kept.name == "edge-1"
    _, _, rekeyed = authenticate_gateway({**params, "public_key": public_key()}, GATEWAY_CTX)
    assert rekeyed.pk == renamed.pk and rekeyed.name == "gw-1"
    assert _logs("gateways") == [("gateways", "insert")] + [("gateways", "update")] * 2
    assert [what for what, _ in sent] == [
        "recorded",
        "recorded",
        [f"portal.{world.account.pk}"],
        "recorded",
    ]


def test_gateway_token_of_a_deleted_site_is_refused(world) -> None:
    params = world.gateway_params()
    Site.objects.filter(pk=world.site.pk).delete()
    with pytest.raises(ConnectRejected) as exc:
        authenticate_gateway(params, GATEWAY_CTX)
    assert (exc.value.status, exc.value.body) == (401, "Invalid token")


def test_concurrent_verification_is_seen_by_the_reconnect(world) -> None:
    """The previous row is the one the upsert locked, not the statement's snapshot: a
    verification committed while the reconnect waits for the row is what the reconnect drops."""
    params = world.client_params(device_serial="SN1")
    _, client = authenticate_client(params, CLIENT_CTX)
    results: list[Any] = []

    def reconnect() -> None:
        try:
            results.append(authenticate_client({**params, "device_serial": "SN2"}, CLIENT_CTX))
        except Exception as exc:  # reported below
            results.append(exc)
        finally:
            connection.close()

    with transaction.atomic():
        Client.objects.filter(pk=client.pk).update(
            verified_at=timezone.now(),
            verified_by="system",
            verified_by_subject={"name": "System", "email": None},
        )
        thread = threading.Thread(target=reconnect)
        thread.start()
        with connection.cursor() as cursor:
            for _ in range(200):  # until the reconnect waits for our row lock
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.01)
    thread.join(timeout=10)
    [(_, moved)] = results
    assert moved.verified_at is None
    update = ChangeLog.objects.get(table="clients", op="update")
    assert update.old_data is not None
    assert update.old_data["verified_at"] is not None and update.old_data["device_serial"] == "SN1"
    assert update.data is not None
    assert update.data["verified_at"] is None and update.data["device_serial"] == "SN2"


# --- permanent bad input is a 422, never a 500 (issue 17) ---------------------------------------

RELAY_CTX = ConnectContext(user_agent=RELAY_UA, remote_ip="192.0.2.9", version="1.4.5")


def _rejected(authenticate_fn: Any, params: dict[str, Any], ctx: ConnectContext) -> str:
    with pytest.raises(ConnectRejected) as exc:
        authenticate_fn(params, ctx)
    assert exc.value.status == 422
    return exc.value.body


@pytest.mark.parametrize("field", ["name", "external_id", "device_serial"])
def test_client_nul_byte_is_invalid(world, field) -> None:
    body = _rejected(authenticate_client, world.client_params(**{field: "a\x00b"}), CLIENT_CTX)
    assert body == f"Invalid or missing connection parameters: {field}: is invalid\n"
    assert Client.objects.count() == 0


@pytest.mark.parametrize("field", ["name", "external_id"])
def test_gateway_nul_byte_is_invalid(world, field) -> None:
    body = _rejected(authenticate_gateway, world.gateway_params(**{field: "\x00"}), GATEWAY_CTX)
    assert body == f"Invalid or missing connection parameters: {field}: is invalid\n"
    assert Gateway.objects.count() == 0


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("9" * 5000, "must be less than or equal to 65535"),
        ("0" * 4999 + "7", None),
        ("²", "is invalid"),
        ("0", "must be greater than or equal to 1"),
    ],
)
def test_relay_port_out_of_range_is_a_422(world, port, message) -> None:
    params = world.relay_params(port=port)
    if message is None:  # leading zeros: the number is what counts (Ecto's integer cast)
        _, _, relay = authenticate_relay(params, RELAY_CTX)
        assert relay.port == 7
        return
    body = _rejected(authenticate_relay, params, RELAY_CTX)
    assert body == f"Invalid or missing connection parameters: port: {message}\n"
    assert Relay.objects.count() == 0


def test_relay_nul_byte_in_name_is_invalid(world) -> None:
    body = _rejected(authenticate_relay, world.relay_params(name="r\x00"), RELAY_CTX)
    assert body == "Invalid or missing connection parameters: name: is invalid\n"
