"""Shared setup of the socket conformance tests (protocol.md §7, "common setup")."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from accounts.models import Account, Actor, AuthIdentity, Token
from accounts.services.tokens import token_create
from accounts.tests.factories import AccountFactory, ActorFactory, IdentityFactory
from gateways.models import RelayGroup, Site
from gateways.services.relays import relay_group_create_global, relay_group_token_create_global
from gateways.tests.factories import RelayGroupFactory, SiteFactory

CLIENT_PATH = "/client/websocket"
GATEWAY_PATH = "/gateway/websocket"
RELAY_PATH = "/relay/websocket"
PATHS = (CLIENT_PATH, GATEWAY_PATH, RELAY_PATH)
GATEWAY_UA = "Linux/24.04 gateway/1.4.17"
RELAY_UA = "Linux/6.1.0 relay/1.4.5 (x86_64)"


def public_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def external_id() -> str:
    return secrets.token_hex(32)


def stamp_secret() -> str:
    return secrets.token_hex(32)


@dataclass
class World:
    account: Account
    actor: Actor
    identity: AuthIdentity
    client_token: str  # Tc
    client_token_row: Token
    browser_token: str
    site: Site
    site_token: str  # Ts
    relay_group: RelayGroup  # self-hosted group of the account
    relay_token: str
    global_group: RelayGroup
    global_relay_token: str

    def client_params(self, **overrides: Any) -> dict[str, Any]:
        params = {
            "token": self.client_token,
            "external_id": external_id(),
            "name": "laptop-1",
            "public_key": public_key(),
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def gateway_params(self, **overrides: Any) -> dict[str, Any]:
        params = {
            "token": self.site_token,
            "external_id": external_id(),
            "name": "gw-1",
            "public_key": public_key(),
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def relay_params(self, *, global_: bool = True, **overrides: Any) -> dict[str, Any]:
        params = {
            "token": self.global_relay_token if global_ else self.relay_token,
            "ipv4": "172.28.0.101",
            "ipv6": "172:28:0::101",
            "port": "3478",
            "name": "r1",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}


def make_world() -> World:
    account = AccountFactory(slug="acme")
    actor = ActorFactory(account=account, admin=True)
    identity = IdentityFactory(actor=actor, account=account)
    expires_at = timezone.now() + timedelta(days=7)
    client = token_create(
        type="client",
        account=account,
        actor=actor,
        identity=identity,
        expires_at=expires_at,
        nonce="n0nce",
    )
    browser = token_create(
        type="browser", account=account, actor=actor, identity=identity, expires_at=expires_at
    )
    site = SiteFactory(account=account, name="S")
    site_token = token_create(type="gateway_group", account=account, gateway_group=site)
    relay_group = RelayGroupFactory(account=account)
    relay_token = token_create(type="relay_group", account=account, relay_group=relay_group)
    global_group = relay_group_create_global()
    global_token = relay_group_token_create_global(group=global_group)
    return World(
        account=account,
        actor=actor,
        identity=identity,
        client_token=client.encoded,
        client_token_row=client.token,
        browser_token=browser.encoded,
        site=site,
        site_token=site_token.encoded,
        relay_group=relay_group,
        relay_token=relay_token.encoded,
        global_group=global_group,
        global_relay_token=global_token.encoded,
    )
