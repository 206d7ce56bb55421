"""Connect and transport conformance (protocol.md §7 scenarios 1-14, 17 relay part, 18; §2.2).

The live tests talk to a real daphne (tests/live.py) over WebSockets; frames are compared whole.
The unit tests at the end check the request-metadata parsing and the connect throttle.
"""

from __future__ import annotations

import time

import pytest

from accounts import request
from accounts.models import Token
from accounts.request import ConnectContext, connect_context, real_ip
from accounts.services.tokens import token_create
from accounts.tests.factories import IdentityFactory
from firezone.phoenix.rejection import ConnectRejected
from gateways import connect
from gateways.connect import invalid_params_body, record_connect_failure
from gateways.models import Client, Gateway, Relay
from gateways.tests.sockets import (
    CLIENT_PATH,
    GATEWAY_PATH,
    GATEWAY_UA,
    PATHS,
    RELAY_PATH,
    RELAY_UA,
    external_id,
    make_world,
    public_key,
    stamp_secret,
)
from tests.live import CONNLIB_UA, DEVICE_HEADERS, Rejected, frame, reply, run_sync

UNMATCHED = {"reason": "unmatched topic"}


async def rejected(live, path: str, params: dict, headers: dict | None = None) -> Rejected:
    with pytest.raises(Rejected) as info:
        await live.device().connect(path, params, headers)
    return info.value


def assert_plain(rejection: Rejected, status: int, body: str) -> None:
    assert (rejection.status, rejection.text) == (status, body)
    assert rejection.headers["content-type"] == "text/plain; charset=utf-8"


# ------------------------------------------------------------------ 1-3: tokens


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_1_missing_token(live, path) -> None:
    rejection = await rejected(live, path, {"external_id": "x", "public_key": public_key()})
    assert_plain(rejection, 401, "Missing token")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_2_garbage_token(live, path) -> None:
    assert_plain(await rejected(live, path, {"token": "foo"}), 401, "Invalid token")
    # An empty token is a present-but-invalid one.
    assert_plain(await rejected(live, path, {"token": ""}), 401, "Invalid token")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_3_wrong_token_type(live) -> None:
    world = await run_sync(make_world)
    for token in (world.browser_token, world.site_token, world.relay_token):
        params = world.client_params(token=token)
        assert_plain(await rejected(live, CLIENT_PATH, params), 401, "Invalid token")
    for token in (world.client_token, world.relay_token):
        params = world.gateway_params(token=token)
        assert_plain(await rejected(live, GATEWAY_PATH, params), 401, "Invalid token")
    for token in (world.client_token, world.site_token):
        params = world.relay_params(token=token)
        assert_plain(await rejected(live, RELAY_PATH, params), 401, "Invalid token")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_deleted_site_or_disabled_actor_is_an_invalid_token(live) -> None:
    world = await run_sync(make_world)
    from django.utils import timezone

    world.actor.disabled_at = timezone.now()
    world.actor.save(update_fields=["disabled_at"])
    rejection = await rejected(live, CLIENT_PATH, world.client_params())
    assert_plain(rejection, 401, "Invalid token")
    world.site.delete()  # tokens cascade in the database
    rejection = await rejected(
        live, GATEWAY_PATH, world.gateway_params(), {"User-Agent": GATEWAY_UA}
    )
    assert_plain(rejection, 401, "Invalid token")


# ------------------------------------------------------------------ 4-6, 11: parameters


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_4_missing_client_params(live) -> None:
    world = await run_sync(make_world)
    rejection = await rejected(live, CLIENT_PATH, {"token": world.client_token})
    assert_plain(
        rejection,
        422,
        "Invalid or missing connection parameters: "
        "external_id: can't be blank\npublic_key: can't be blank\n",
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_5_bad_key_length(live) -> None:
    world = await run_sync(make_world)
    rejection = await rejected(live, CLIENT_PATH, world.client_params(public_key="AAAA"))
    assert_plain(
        rejection,
        422,
        "Invalid or missing connection parameters: public_key: should be 44 character(s)\n",
    )
    rejection = await rejected(live, CLIENT_PATH, world.client_params(public_key="!" * 44))
    assert rejection.text == (
        "Invalid or missing connection parameters: public_key: must be a base64-encoded string\n"
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_6_unparseable_user_agent(live) -> None:
    world = await run_sync(make_world)
    headers = {**DEVICE_HEADERS, "User-Agent": "curl/8.0"}
    rejection = await rejected(live, CLIENT_PATH, world.client_params(), headers)
    assert_plain(
        rejection,
        422,
        "Invalid or missing connection parameters: last_seen_user_agent: is invalid\n",
    )
    headers = {**DEVICE_HEADERS, "User-Agent": "curl/8.0"}
    rejection = await rejected(live, GATEWAY_PATH, world.gateway_params(), headers)
    assert rejection.text.endswith("last_seen_user_agent: is invalid\n")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_missing_user_agent_is_422_blank(live, path) -> None:
    world = await run_sync(make_world)
    params = {
        CLIENT_PATH: world.client_params(),
        GATEWAY_PATH: world.gateway_params(),
        RELAY_PATH: world.relay_params(),
    }[path]
    headers = {k: v for k, v in DEVICE_HEADERS.items() if k != "User-Agent"}
    assert_plain(
        await rejected(live, path, params, headers),
        422,
        "Invalid or missing connection parameters: last_seen_user_agent: can't be blank\n",
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_11_relay_without_address(live) -> None:
    world = await run_sync(make_world)
    params = {"token": world.relay_token, "port": "3478"}
    rejection = await rejected(live, RELAY_PATH, params, {"User-Agent": RELAY_UA})
    message = "one of these fields must be present: ipv4, ipv6"
    assert_plain(
        rejection,
        422,
        f"Invalid or missing connection parameters: ipv4: {message}\nipv6: {message}\n",
    )
    params = world.relay_params(port="70000")
    rejection = await rejected(live, RELAY_PATH, params, {"User-Agent": RELAY_UA})
    assert rejection.text == (
        "Invalid or missing connection parameters: port: must be less than or equal to 65535\n"
    )


# ------------------------------------------------------------------ 7-10: registration


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_7_client_registration(live) -> None:
    world = await run_sync(make_world)
    params = world.client_params(device_serial="C02XL0GRJGH5", device_uuid="9A5E")
    async with live.device() as device:
        await device.connect(CLIENT_PATH, params)
        assert await device.join("client") == reply("client", 0)
        client = Client.objects.get(account=world.account, external_id=params["external_id"])
        assert client.public_key == params["public_key"]
        assert client.name == "laptop-1"
        assert client.actor_id == world.actor.pk
        assert client.identity_id == world.identity.pk
        assert (client.device_serial, client.device_uuid) == ("C02XL0GRJGH5", "9A5E")
        assert client.last_seen_user_agent == CONNLIB_UA
        assert client.last_seen_version == "1.3.0"
        assert client.last_seen_remote_ip == "189.172.73.153"
        assert client.last_seen_remote_ip_location_region == "Ukraine"
        assert client.last_seen_remote_ip_location_city == "Kyiv"
        assert client.last_seen_remote_ip_location_lat == 50.4333
        assert client.last_seen_remote_ip_location_lon == 30.5167
        assert client.ipv4 and client.ipv6
        token = Token.objects.get(pk=world.client_token_row.pk)
        assert token.last_seen_user_agent == CONNLIB_UA
        assert token.last_seen_remote_ip == "189.172.73.153"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_8_client_upsert(live) -> None:
    world = await run_sync(make_world)
    params = world.client_params()
    async with live.device() as device:
        await device.connect(CLIENT_PATH, params)
    first = Client.objects.get(account=world.account, external_id=params["external_id"])

    other_identity = IdentityFactory(
        actor=world.actor, account=world.account, provider=world.identity.provider
    )
    other_token = await run_sync(
        token_create,
        type="client",
        account=world.account,
        actor=world.actor,
        identity=other_identity,
        expires_at=world.client_token_row.expires_at,
    )
    new_key = public_key()
    again = {**params, "token": other_token.encoded, "public_key": new_key, "name": "renamed"}
    async with live.device() as device:
        await device.connect(CLIENT_PATH, again)
    second = Client.objects.get(account=world.account, external_id=params["external_id"])
    assert second.pk == first.pk
    assert (second.ipv4, second.ipv6) == (first.ipv4, first.ipv6)
    assert second.public_key == new_key
    assert second.identity_id == other_identity.pk
    assert second.name == "laptop-1"
    assert Client.objects.filter(account=world.account).count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_9_default_coordinates(live) -> None:
    world = await run_sync(make_world)
    params = world.client_params()
    headers = {"User-Agent": CONNLIB_UA, "X-Forwarded-For": "189.172.73.153"}
    async with live.device() as device:
        await device.connect(CLIENT_PATH, params, {**headers, "x-geo-location-region": "UA"})
    client = Client.objects.get(external_id=params["external_id"])
    assert client.last_seen_remote_ip_location_region == "UA"
    assert client.last_seen_remote_ip_location_city is None
    assert (client.last_seen_remote_ip_location_lat, client.last_seen_remote_ip_location_lon) == (
        49.0,
        32.0,
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_10_gateway_registration(live) -> None:
    world = await run_sync(make_world)
    params = world.gateway_params()
    async with live.device() as device:
        await device.connect(GATEWAY_PATH, params, {**DEVICE_HEADERS, "User-Agent": GATEWAY_UA})
        assert await device.join("gateway") == reply("gateway", 0)
    gateway = Gateway.objects.get(external_id=params["external_id"])
    assert gateway.group_id == world.site.pk
    assert gateway.account_id == world.account.pk
    assert gateway.name == "gw-1"
    assert gateway.public_key == params["public_key"]
    assert gateway.last_seen_version == "1.4.17"
    assert gateway.last_seen_remote_ip == "189.172.73.153"
    assert gateway.ipv4 and gateway.ipv6


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_relay_registration(live) -> None:
    world = await run_sync(make_world)
    async with live.device() as device:
        await device.connect(
            RELAY_PATH, world.relay_params(global_=False), {"User-Agent": RELAY_UA}
        )
    relay = Relay.objects.get()
    assert (relay.ipv4, relay.ipv6, relay.port, relay.name) == (
        "172.28.0.101",
        "172:28::101",
        3478,
        "r1",
    )
    assert (relay.group_id, relay.account_id) == (world.relay_group.pk, world.account.pk)
    assert relay.last_seen_version == "1.4.5"
    assert relay.last_seen_remote_ip == "127.0.0.1"  # no X-Forwarded-For: the peer


# ------------------------------------------------------------------ 12-14, 17, 18: framing


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_12_heartbeat_before_join(live) -> None:
    world = await run_sync(make_world)
    cases = [
        (CLIENT_PATH, world.client_params(), DEVICE_HEADERS),
        (GATEWAY_PATH, world.gateway_params(), {**DEVICE_HEADERS, "User-Agent": GATEWAY_UA}),
        (RELAY_PATH, world.relay_params(), {"User-Agent": RELAY_UA}),
    ]
    for path, params, headers in cases:
        async with live.device() as device:
            await device.connect(path, params, headers)
            await device.send("phoenix", "heartbeat", {}, ref=41)
            assert await device.recv() == reply("phoenix", 41)
            await device.expect_nothing(0.2)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_13_14_unmatched_topics(live) -> None:
    world = await run_sync(make_world)
    async with live.device() as device:
        await device.connect(CLIENT_PATH, world.client_params())
        payload = {"resource_id": "x", "connected_gateway_ids": []}
        await device.send("client", "create_flow", payload, ref=3)
        assert await device.recv() == reply("client", 3, "error", UNMATCHED)
        ref = await device.send("foo", "phx_join", {})
        assert await device.recv() == reply("foo", ref, "error", UNMATCHED)
        ref = await device.send("gateway", "phx_join", None)
        assert await device.recv() == reply("gateway", ref, "error", UNMATCHED)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_17_unknown_relay_event(live) -> None:
    world = await run_sync(make_world)
    async with live.device() as device:
        await device.connect(RELAY_PATH, world.relay_params(), {"User-Agent": RELAY_UA})
        assert await device.join("relay", {"stamp_secret": stamp_secret()}) == reply("relay", 0)
        assert await device.recv() == frame("relay", "init", {})
        ref = await device.send("relay", "unknown_message", {})
        assert await device.recv() == reply("relay", ref, "error", {"reason": "unknown_message"})
        ref = await device.send("phoenix", "heartbeat", {})
        assert await device.recv() == reply("phoenix", ref)
        ref = await device.send("relay", "something_else", {"a": 1})
        assert await device.recv() == reply("relay", ref, "error", {"reason": "unknown_message"})


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_18_relay_join_without_secret(live) -> None:
    world = await run_sync(make_world)
    async with live.device() as device:
        await device.connect(RELAY_PATH, world.relay_params(), {"User-Agent": RELAY_UA})
        for payload in ({}, None, {"stamp_secret": 1}, "secret"):
            ref = await device.send("relay", "phx_join", payload)
            assert await device.recv() == reply("relay", ref, "error", {"reason": "join crashed"})
        await device.expect_nothing(0.2)
        # Not joined: events are unmatched, and a proper join still works.
        ref = await device.send("relay", "anything", {})
        assert await device.recv() == reply("relay", ref, "error", UNMATCHED)
        ref = await device.send("relay", "phx_join", {"stamp_secret": stamp_secret()})
        assert await device.recv() == reply("relay", ref)
        assert await device.recv() == frame("relay", "init", {})


# ------------------------------------------------------------------ plain HTTP, throttle


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_plain_http_on_socket_paths_is_400_empty(live) -> None:
    for path in PATHS:
        for method in ("GET", "POST"):
            status, _, body = await run_sync(live.http, method, f"{path}?token=foo")
            assert (status, body) == (400, b"")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_repeated_failures_are_slowed_down_never_429(live) -> None:
    headers = {**DEVICE_HEADERS, "X-Forwarded-For": "198.51.100.77"}
    from django.core.cache import cache

    cache.delete("socket-connect-failures:198.51.100.77")
    for _ in range(connect.CONNECT_FREE_FAILURES):
        assert (await rejected(live, CLIENT_PATH, {"token": "x"}, headers)).status == 401
    started = time.monotonic()
    for _ in range(2):
        assert_plain(
            await rejected(live, CLIENT_PATH, {"token": "x"}, headers), 401, "Invalid token"
        )
    assert time.monotonic() - started >= 0.5  # 0.2 s + 0.4 s of delay
    cache.delete("socket-connect-failures:198.51.100.77")


# ------------------------------------------------------------------ unit: metadata (§2.2)


def _scope(headers: dict[str, str], peer: str | None = "10.0.0.5") -> dict:
    return {
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": [peer, 50000] if peer else None,
    }


def test_real_ip_walks_forwarded_for_from_the_right() -> None:
    assert real_ip(["189.172.73.153"], "10.0.0.5") == "189.172.73.153"
    # Private hops and trusted proxies are skipped; the right-most other address wins.
    assert real_ip(["1.1.1.1, 189.172.73.153, 10.1.2.3"], "10.0.0.5") == "189.172.73.153"
    proxies = request._networks(("35.191.0.0/16",))
    assert (
        real_ip(["1.1.1.1, 189.172.73.153, 35.191.4.4"], "10.0.0.5", trusted_proxies=proxies)
        == "189.172.73.153"
    )
    assert real_ip(["1.1.1.1", "2.2.2.2"], "10.0.0.5") == "2.2.2.2"  # several headers
    # Nothing usable: the peer.
    assert real_ip(["192.168.1.1, garbage, fc00::1"], "203.0.113.9") == "203.0.113.9"
    assert real_ip([], "::ffff:203.0.113.9") == "203.0.113.9"
    # A private client explicitly allowed.
    clients = request._networks(("10.1.0.0/16",))
    assert real_ip(["10.1.2.3"], "10.0.0.5", private_clients=clients) == "10.1.2.3"
    assert real_ip(["2001:db8::1"], "10.0.0.5") == "2001:db8::1"


def test_connect_context_from_headers() -> None:
    ctx = connect_context(_scope(DEVICE_HEADERS))
    assert ctx == ConnectContext(
        user_agent=CONNLIB_UA,
        remote_ip="189.172.73.153",
        region="Ukraine",
        city="Kyiv",
        lat=50.4333,
        lon=30.5167,
        version="1.3.0",
    )
    auth = ctx.auth_context("client")
    assert (auth.type, auth.remote_ip, auth.remote_ip_location_lat) == (
        "client",
        "189.172.73.153",
        50.4333,
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-geo-location-region": "UA"}, ("UA", None, 49.0, 32.0)),
        ({"x-geo-location-region": "US"}, ("US", None, 38.0, -97.0)),
        (
            {"x-geo-location-region": "US", "x-geo-location-coordinates": "1.5,2.5"},
            ("US", None, 1.5, 2.5),
        ),
        ({"x-geo-location-region": "", "x-geo-location-city": ""}, (None, None, None, None)),
        ({"x-geo-location-region": "Ukraine"}, ("Ukraine", None, None, None)),
        ({"x-geo-location-coordinates": ","}, (None, None, None, None)),
        ({"x-geo-location-coordinates": ""}, (None, None, None, None)),
        (
            {"x-geo-location-region": "UA", "x-geo-location-coordinates": ","},
            ("UA", None, 49.0, 32.0),
        ),
        ({"x-geo-location-coordinates": "abc,1.0"}, (None, None, None, None)),
        ({"x-geo-location-coordinates": "95.0,1.0"}, (None, None, None, None)),
        ({"x-geo-location-city": "Kyiv"}, (None, "Kyiv", None, None)),
    ],
)
def test_location_headers(headers, expected) -> None:
    ctx = connect_context(_scope({"User-Agent": CONNLIB_UA, **headers}))
    assert (ctx.region, ctx.city, ctx.lat, ctx.lon) == expected


def test_peer_address_without_forwarded_for_and_version() -> None:
    ctx = connect_context(_scope({"User-Agent": "Debian/12.0.0 gateway/1.4.17 (x86_64)"}))
    assert (ctx.remote_ip, ctx.version) == ("10.0.0.5", "1.4.17")
    assert connect_context(_scope({})).user_agent is None


def test_trusted_proxies_setting(settings) -> None:
    settings.TRUSTED_PROXIES = ["189.172.0.0/16"]
    ctx = connect_context(_scope({"X-Forwarded-For": "8.8.8.8, 189.172.73.153"}))
    assert ctx.remote_ip == "8.8.8.8"


def test_invalid_params_body_sorts_fields_and_joins_messages() -> None:
    body = invalid_params_body({"public_key": ["a", "b"], "external_id": ["c"]})
    assert body == "Invalid or missing connection parameters: external_id: c\npublic_key: a; b\n"


def test_connect_failures_are_delayed_not_refused_differently() -> None:
    from django.core.cache import cache

    ctx = ConnectContext(user_agent=CONNLIB_UA, remote_ip="198.51.100.99")
    cache.delete("socket-connect-failures:198.51.100.99")
    invalid = ConnectRejected(401, "Invalid token")
    delays = [record_connect_failure(invalid, ctx) for _ in range(30)]
    free = connect.CONNECT_FREE_FAILURES
    assert delays[:free] == [0.0] * free
    assert delays[free] == pytest.approx(connect.CONNECT_DELAY_STEP)
    assert max(delays) == connect.CONNECT_MAX_DELAY
    # Validation errors (valid token) are never counted.
    assert record_connect_failure(ConnectRejected(422, "x"), ctx) == 0.0
    cache.delete("socket-connect-failures:198.51.100.99")


def test_ids_and_keys_helpers_are_connlib_shaped() -> None:
    assert len(public_key()) == 44 and len(external_id()) == 64


def test_country_centroids_table() -> None:
    from firezone.geo import COUNTRY_CENTROIDS, default_coordinates, distance_km

    assert len(COUNTRY_CENTROIDS) == 249  # every ISO-3166 alpha-2 country code
    assert COUNTRY_CENTROIDS["UA"] == (49.0, 32.0)
    assert COUNTRY_CENTROIDS["US"] == (38.0, -97.0)
    assert all(-90 <= lat <= 90 and -180 <= lon <= 180 for lat, lon in COUNTRY_CENTROIDS.values())
    assert default_coordinates("UA", 1.0, 2.0) == (1.0, 2.0)
    assert default_coordinates("ua", None, None) == (None, None)  # codes are exact
    assert distance_km((0.0, 0.0), (0.0, 180.0)) == pytest.approx(20015.09, abs=0.01)
