"""Relay pages (portal.md §4.8) with the Django test client: the feature gate, the groups list
(global groups included), new/edit, the group page and its events, Deploy Relay and the relay
page. Presence is faked at the view's Redis call."""

from __future__ import annotations

import html
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, Token
from accounts.tests.factories import ALL_FEATURES, AccountFactory, ActorFactory, IdentityFactory
from accounts.tests.portal import UA, Acme, inject_session, make_acme
from gateways.models import Relay, RelayGroup
from gateways.tests.factories import RelayFactory, RelayGroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _features(settings: Any) -> None:
    settings.FEATURES = {**settings.FEATURES, "self_hosted_relays": True}


class Presence(set[str]):
    """Relay ids reported online on every topic asked for; `asked` records the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[str]] = []

    def lookup(self, topics: Any) -> dict[str, dict[str, list[dict]]]:
        topics = list(topics)
        self.asked.append(topics)
        return {t: {rid: [{"token_id": "x"}] for rid in self} for t in topics}


@pytest.fixture
def online(monkeypatch: Any) -> Presence:
    present = Presence()
    monkeypatch.setattr("gateways.views.relays.list_presences_many_sync", present.lookup)
    return present


@pytest.fixture
def acme() -> Acme:
    return make_acme()


@pytest.fixture
def client(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _text(response: Any) -> str:
    return html.unescape(response.content.decode())


def _group(account: Account | None, name: str = "eu") -> RelayGroup:
    if account is None:
        return RelayGroupFactory(global_=True, name=name)
    return RelayGroupFactory(account=account, name=name)


def _relay(group: RelayGroup, **kwargs: Any) -> Relay:
    return RelayFactory(group=group, account=group.account, **kwargs)


def _relay_token(group: RelayGroup) -> Token:
    return Token.objects.create(
        type="relay_group",
        relay_group=group,
        account=group.account,
        secret_salt="salt",
        secret_hash="hash",
        created_by="system",
    )


def _paths(group: RelayGroup, relay: Relay) -> list[str]:
    return [
        "/acme/relay_groups",
        "/acme/relay_groups/new",
        f"/acme/relay_groups/{group.pk}",
        f"/acme/relay_groups/{group.pk}/edit",
        f"/acme/relay_groups/{group.pk}/new_token",
        f"/acme/relays/{relay.pk}",
    ]


# --- access --------------------------------------------------------------------------------------


def test_feature_off_is_404_everywhere(client: Client, acme: Acme, online: Presence) -> None:
    group = _group(acme.account)
    relay = _relay(group)
    acme.account.features = {**ALL_FEATURES, "self_hosted_relays": False}
    acme.account.save()
    for path in _paths(group, relay):
        assert client.get(path).status_code == 404, path
        assert client.post(path, {"action": "delete"}).status_code == 404, path
    assert RelayGroup.objects.filter(pk=group.pk).exists()
    assert not Token.objects.filter(relay_group=group).exists()
    # Nor a sidebar item.
    assert 'href="/acme/relay_groups"' not in _text(client.get("/acme/settings/account"))


def test_global_switch_off_is_404(client: Client, settings: Any) -> None:
    settings.FEATURES = {**settings.FEATURES, "self_hosted_relays": False}
    assert client.get("/acme/relay_groups").status_code == 404


def test_sidebar_has_relays_with_the_feature(client: Client) -> None:
    assert 'href="/acme/relay_groups"' in _text(client.get("/acme/settings/account"))


def test_regular_user_gets_404(acme: Acme) -> None:
    group = _group(acme.account)
    relay = _relay(group)
    user = ActorFactory(account=acme.account)
    identity = IdentityFactory(actor=user, account=acme.account, provider=acme.email_provider)
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, identity)
    for path in _paths(group, relay):
        assert c.get(path).status_code == 404, path
        assert c.post(path, {"action": "delete", "name": "x"}).status_code == 404, path
    assert RelayGroup.objects.filter(pk=group.pk).exists()


def test_other_accounts_objects_are_404(client: Client, online: Presence) -> None:
    other = AccountFactory()
    group = _group(other, "theirs")
    relay = _relay(group)
    _relay_token(group)
    paths = [p for p in _paths(group, relay) if str(group.pk) in p or str(relay.pk) in p]
    for path in paths:
        assert client.get(path).status_code == 404, path
        for action in ("delete", "revoke_all"):
            assert client.post(path, {"action": action, "name": "x"}).status_code == 404, path
    group.refresh_from_db()
    assert group.name == "theirs"
    assert Relay.objects.filter(pk=relay.pk).exists()
    assert Token.objects.filter(relay_group=group).count() == 1


@pytest.mark.parametrize("bad", ["nope", "123", str(uuid.uuid4())])
def test_malformed_or_unknown_ids_are_404(client: Client, bad: str) -> None:
    for path in (
        f"/acme/relay_groups/{bad}",
        f"/acme/relay_groups/{bad}/edit",
        f"/acme/relay_groups/{bad}/new_token",
        f"/acme/relays/{bad}",
    ):
        assert client.get(path).status_code == 404, path


# --- list ----------------------------------------------------------------------------------------


def test_list(client: Client, acme: Acme, online: Presence) -> None:
    global_group = _group(None, "firezone-eu")
    global_relay = _relay(global_group, name="fz-relay-1", ipv4="203.0.113.7")
    group = _group(acme.account, "eu")
    mine = _relay(group, name="eu-1", ipv4="198.51.100.1", ipv6="2001:db8::1")
    offline = _relay(group, name=None, ipv4="198.51.100.2")
    online.update({str(mine.pk), str(global_relay.pk)})
    _group(AccountFactory(), "someone-else")

    response = client.get("/acme/relay_groups")
    assert response.status_code == 200
    text = _text(response)
    assert "<title>Relays · Firezone</title>" in text
    assert "Relay Instance Groups" in text
    assert "Add Instance Group" in text and 'href="/acme/relay_groups/new"' in text
    assert f'id="group-{group.pk}"' in text
    assert f'href="/acme/relay_groups/{group.pk}">eu</a>' in text
    assert f'id="group-{global_group.pk}"' in text
    assert f'href="/acme/relay_groups/{global_group.pk}"' not in text
    assert "someone-else" not in text
    assert f'href="/acme/relays/{mine.pk}">eu-1</a>' in text
    assert "<code>198.51.100.1</code>" in text and "<code>2001:db8::1</code>" in text
    assert f'href="/acme/relays/{offline.pk}">198.51.100.2</a>' in text
    assert f'href="/acme/relays/{global_relay.pk}"' not in text and "fz-relay-1" in text
    assert "self-hosted" in text and "firezone-owned" in text
    mine_row = text.split(f'id="relay-{mine.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "Online" in mine_row
    offline_row = text.split(f'id="relay-{offline.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "Offline" in offline_row
    # Follows the account's relays and the global groups' relays.
    topics = text.split('data-live-topics="', 1)[1].split('"', 1)[0].split()
    assert topics == [f"account_relays:{acme.account.pk}", f"group_relays:{global_group.pk}"]
    assert "Showing 2 of 2" in text


def test_list_empty(client: Client, online: Presence) -> None:
    text = _text(client.get("/acme/relay_groups"))
    assert "No relay instance groups to display" in text


def _count_queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_does_not_grow(client: Client, acme: Acme, online: Presence) -> None:
    _relay(_group(acme.account, "g0"))
    client.get("/acme/relay_groups")
    few = _count_queries(client, "/acme/relay_groups")
    for i in range(1, 50):
        group = _group(acme.account, f"g{i}")
        _relay(group)
        _relay(group)
    many = _count_queries(client, "/acme/relay_groups")
    assert few == many
    # One presence round trip per page, whatever the number of groups.
    assert all(len(call) <= 10 for call in online.asked)


def test_group_query_count_does_not_grow(client: Client, acme: Acme, online: Presence) -> None:
    group = _group(acme.account)
    _relay(group)
    path = f"/acme/relay_groups/{group.pk}"
    client.get(path)
    few = _count_queries(client, path)
    for _ in range(50):
        _relay(group)
    many = _count_queries(client, path)
    assert few == many


# --- new / edit ----------------------------------------------------------------------------------


def test_new_group(client: Client, acme: Acme) -> None:
    text = _text(client.get("/acme/relay_groups/new"))
    assert "<title>New Relay Group · Firezone</title>" in text
    assert "Name Prefix" in text and 'placeholder="Name of this Relay Instance Group"' in text
    response = client.post("/acme/relay_groups/new", {"name": "eu"})
    group = RelayGroup.objects.get(account=acme.account, name="eu")
    assert response.status_code == 302
    assert response["Location"] == f"/acme/relay_groups/{group.pk}"
    assert group.created_by_subject["name"] == "Admin"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "can't be blank"),
        ("x" * 65, "should be at most 64 character(s)"),
        ("taken", "has already been taken"),
    ],
)
def test_new_group_validation(client: Client, acme: Acme, name: str, error: str) -> None:
    _group(acme.account, "taken")
    response = client.post("/acme/relay_groups/new", {"name": name})
    assert response.status_code == 200 and error in _text(response)
    assert RelayGroup.objects.filter(account=acme.account).count() == 1


def test_edit_group(client: Client, acme: Acme) -> None:
    group = _group(acme.account, "eu")
    _group(acme.account, "us")
    path = f"/acme/relay_groups/{group.pk}/edit"
    text = _text(client.get(path))
    assert "Edit Relay Instance Group <code>eu</code>" in text and 'value="eu"' in text
    response = client.post(path, {"name": "us"})
    assert response.status_code == 200 and "has already been taken" in _text(response)
    response = client.post(path, {"name": "eu-west"})
    assert response["Location"] == f"/acme/relay_groups/{group.pk}"
    group.refresh_from_db()
    assert group.name == "eu-west"


def test_global_group_has_no_edit_or_deploy(client: Client) -> None:
    group = _group(None, "firezone")
    assert client.get(f"/acme/relay_groups/{group.pk}/edit").status_code == 404
    assert client.post(f"/acme/relay_groups/{group.pk}/edit", {"name": "x"}).status_code == 404
    assert client.get(f"/acme/relay_groups/{group.pk}/new_token").status_code == 404
    assert not Token.objects.filter(relay_group=group).exists()


# --- group page ----------------------------------------------------------------------------------


def test_group_page(client: Client, acme: Acme, online: Presence) -> None:
    group = _group(acme.account, "eu")
    up = _relay(group, name="eu-1")
    down = _relay(group, name="eu-2")
    online.add(str(up.pk))
    text = _text(client.get(f"/acme/relay_groups/{group.pk}"))
    assert "<title>Relay Group eu · Firezone</title>" in text
    assert "Relay Instance Group: <code>eu</code>" in text
    assert "Edit Instance Group" in text
    assert "<th>Instance Group Name</th>" in text and "<th>Created</th>" in text
    assert f'href="/acme/relay_groups/{group.pk}/new_token"' in text and ">Deploy<" in text
    assert "Confirm revocation of all tokens" in text
    assert "Are you sure you want to revoke all tokens for this Relay Group?" in text
    assert f'id="relay-{up.pk}"' in text and f'id="relay-{down.pk}"' in text
    up_row = text.split(f'id="relay-{up.pk}"', 1)[1].split("</tr>", 1)[0]
    down_row = text.split(f'id="relay-{down.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "Online" in up_row and "Offline" in down_row
    assert text.index("eu-1") < text.index("eu-2")
    assert f'data-live-topics="group_relays:{group.pk}"' in text
    assert "Delete Instance Group" in text
    assert "Confirm deletion of the Instance Group" in text
    assert (
        "Are you sure you want to delete this Instance Group? All relay instances will be "
        "disconnected." in text
    )


def test_group_page_empty(client: Client, acme: Acme, online: Presence) -> None:
    group = _group(acme.account)
    assert "No relay instances to display" in _text(client.get(f"/acme/relay_groups/{group.pk}"))


def test_global_group_page_is_read_only(client: Client, online: Presence) -> None:
    group = _group(None, "firezone")
    _relay(group, name="fz-1")
    _relay_token(group)
    path = f"/acme/relay_groups/{group.pk}"
    text = _text(client.get(path))
    assert "Relay Instance Group: <code>firezone</code>" in text and "fz-1" in text
    assert "Edit Instance Group" not in text
    assert "Revoke All" not in text  # §9 item 19
    assert ">Deploy<" not in text and "Danger Zone" not in text
    response = client.post(path, {"action": "revoke_all"}, follow=True)
    assert "You don't have permissions to perform this action." in _text(response)
    client.post(path, {"action": "delete"})
    assert RelayGroup.objects.filter(pk=group.pk).exists()
    assert Token.objects.filter(relay_group=group).count() == 1


def test_revoke_all(client: Client, acme: Acme, online: Presence) -> None:
    group = _group(acme.account)
    other = _group(acme.account, "other")
    _relay_token(group)
    _relay_token(group)
    kept = _relay_token(other)
    path = f"/acme/relay_groups/{group.pk}"
    response = client.post(path, {"action": "revoke_all"}, follow=True)
    assert "2 token(s) were revoked." in _text(response)
    assert not Token.objects.filter(relay_group=group).exists()
    assert Token.objects.filter(pk=kept.pk).exists()


def test_delete_group(client: Client, acme: Acme) -> None:
    group = _group(acme.account)
    relay = _relay(group)
    _relay_token(group)
    response = client.post(f"/acme/relay_groups/{group.pk}", {"action": "delete"})
    assert response.status_code == 302 and response["Location"] == "/acme/relay_groups"
    assert not RelayGroup.objects.filter(pk=group.pk).exists()
    assert not Relay.objects.filter(pk=relay.pk).exists()
    assert not Token.objects.filter(relay_group_id=group.pk).exists()


# --- deploy --------------------------------------------------------------------------------------


def test_deploy_creates_a_token_per_visit(client: Client, acme: Acme, settings: Any) -> None:
    settings.API_URL_OVERRIDE = ""
    group = _group(acme.account, "eu")
    path = f"/acme/relay_groups/{group.pk}/new_token"
    response = client.get(path)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    text = _text(response)
    token = Token.objects.get(relay_group=group)
    assert token.type == "relay_group" and token.expires_at is None
    assert "<title>New Relay · Firezone</title>" in text
    assert "Deploy Relay" in text and "Select deployment method:" in text
    assert 'id="systemd-instructions"' in text and 'id="docker-instructions"' in text
    assert "Description=Firezone Relay" in text
    assert 'Environment="FIREZONE_TOKEN=.' in text
    assert 'Environment="PUBLIC_IP4_ADDR=YOU_MUST_SET_THIS_VALUE"' in text
    assert 'Environment="PUBLIC_IP6_ADDR=YOU_MUST_SET_THIS_VALUE"' in text
    assert 'Environment="LOG_FORMAT=google-cloud"' in text
    assert "FIREZONE_API_URL" not in text
    assert "Restart=always" in text and "ExecStartPre=" in text
    assert "sudo nano /etc/systemd/system/firezone-relay.service" in text
    for command in ("daemon-reload", "start firezone-relay", "enable firezone-relay"):
        assert f"sudo systemctl {command}" in text
    assert "journalctl -u firezone-relay.service" in text
    assert '--health-cmd="cat /proc/net/udp | grep D96"' in text
    assert "--name=firezone-relay" in text and "--env FIREZONE_NAME=$(hostname)" in text
    assert "ghcr.io/firezone/relay:latest" in text
    assert 'docker ps --filter "name=firezone-relay"' in text
    assert "docker logs firezone-relay" in text
    assert "Relay not connecting?" in text and "relay troubleshooting guide" in text
    assert "Waiting for connection..." in text and "Connected, click to continue" in text
    assert "Do you want to skip waiting for relay to be connected?" in text
    assert f'data-live-token="{token.pk}"' in text
    assert f'data-live-topics="group_relays:{group.pk}"' in text
    # The token string is a working relay token of this group.
    encoded = text.split('Environment="FIREZONE_TOKEN=', 1)[1].split('"', 1)[0]
    from accounts.request import connect_context
    from gateways.services.relays import relay_authenticate

    found, found_token = relay_authenticate(
        encoded,
        context=connect_context({"headers": [], "client": ("127.0.0.1", 0)}).auth_context(
            "relay_group"
        ),
    )
    assert found.pk == group.pk and found_token.pk == token.pk

    client.get(path)
    assert Token.objects.filter(relay_group=group).count() == 2
    # htmx requests (live refreshes) of the page do not mint tokens.
    response = client.get(path, headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert Token.objects.filter(relay_group=group).count() == 2


def test_deploy_with_api_url_override(client: Client, acme: Acme, settings: Any) -> None:
    settings.API_URL_OVERRIDE = "wss://api.example.com"
    settings.DOCKER_REGISTRY = "registry.example.com/fz"
    group = _group(acme.account)
    text = _text(client.get(f"/acme/relay_groups/{group.pk}/new_token"))
    assert 'Environment="FIREZONE_API_URL=wss://api.example.com"' in text
    assert '--env FIREZONE_API_URL="wss://api.example.com"' in text
    assert "registry.example.com/fz/relay:latest" in text


# --- relay page ----------------------------------------------------------------------------------


def test_relay_page(client: Client, acme: Acme, online: Presence) -> None:
    group = _group(acme.account, "eu")
    relay = _relay(
        group,
        name="eu-1",
        ipv4="198.51.100.1",
        ipv6="2001:db8::1",
        last_seen_version="1.4.5",
        last_seen_remote_ip_location_city="Berlin",
        last_seen_remote_ip_location_region="DE",
    )
    path = f"/acme/relays/{relay.pk}"
    text = _text(client.get(path))
    assert "<title>Relay eu-1 · Firezone</title>" in text
    assert "Relay: <code>eu-1</code>" in text
    for label in ("Instance Group Name", "Name", "Status", "Last started"):
        assert f"<th>{label}</th>" in text
    assert "Set by <code>PUBLIC_IP4_ADDR</code>" in text
    assert "Set by <code>PUBLIC_IP6_ADDR</code>" in text
    assert "<code>198.51.100.1</code>" in text and "<code>2001:db8::1</code>" in text
    assert "(Berlin, DE)" in text and "1.4.5" in text
    assert "Offline" in text.split('id="relay-status"', 1)[1].split("</td>", 1)[0]
    assert f'data-live-topics="relays:{relay.pk}"' in text
    assert f'href="/acme/relay_groups/{group.pk}">eu</a>' in text
    assert "Delete Relay" in text and "Confirm deletion of Relay" in text
    assert "Are you sure you want to delete this relay?" in text

    online.add(str(relay.pk))
    text = _text(client.get(path))
    assert "Online" in text.split('id="relay-status"', 1)[1].split("</td>", 1)[0]


def test_relay_page_title_falls_back_to_address(client: Client, acme: Acme) -> None:
    relay = _relay(_group(acme.account), name=None, ipv4="198.51.100.9")
    text = _text(client.get(f"/acme/relays/{relay.pk}"))
    assert "<title>Relay 198.51.100.9 · Firezone</title>" in text


def test_delete_relay(client: Client, acme: Acme) -> None:
    group = _group(acme.account)
    relay = _relay(group)
    token = _relay_token(group)
    response = client.post(f"/acme/relays/{relay.pk}", {"action": "delete"})
    assert response.status_code == 302
    assert response["Location"] == f"/acme/relay_groups/{group.pk}"
    assert not Relay.objects.filter(pk=relay.pk).exists()
    assert Token.objects.filter(pk=token.pk).exists()  # the token is not revoked


def test_global_relay_page_is_read_only(client: Client) -> None:
    relay = _relay(_group(None, "firezone"), name="fz-1")
    path = f"/acme/relays/{relay.pk}"
    text = _text(client.get(path))
    assert "Relay: <code>fz-1</code>" in text and "Delete Relay" not in text
    response = client.post(path, {"action": "delete"}, follow=True)
    assert "You don't have permissions to perform this action." in _text(response)
    assert Relay.objects.filter(pk=relay.pk).exists()
