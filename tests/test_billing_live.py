"""Billing end to end (issue 15): a real daphne with billing on, the fake Stripe on a local port,
signed webhooks over HTTP, a client connected over a real WebSocket.

Sign up → the customer and the subscription exist in the fake → a signed
`customer.subscription.updated` to the Team product (plus `idp_sync` in the subscription's
metadata) raises the account's limits and turns `idp_sync` on → the admin's billing page shows
"Team" → `customer.subscription.paused` disables the account and closes its client's socket (and
refuses it) → `customer.subscription.resumed` enables it and the client joins again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.auth import Context
from accounts.models import Account
from accounts.services.tokens import token_create
from accounts.tests.portal import UA, session_cookie_for
from gateways.connect import ACCOUNT_DISABLED
from gateways.tests.sockets import CLIENT_PATH, external_id, public_key
from resources.services.provisioning import Provisioned
from resources.services.sign_up import account_sign_up
from tests import stripe_fake
from tests.api import API_HOST
from tests.live import (
    DEVICE_HEADERS,
    Device,
    LiveServer,
    Rejected,
    reply,
    run_daphne,
    run_sync,
    server_env,
    wait_for_sessions_to_end,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WEBHOOK = "/integrations/stripe/webhooks"


def _billing_settings(url: str) -> dict[str, str]:
    return {
        "BILLING_ENABLED": "true",
        "STRIPE_SECRET_KEY": stripe_fake.SECRET_KEY,
        "STRIPE_WEBHOOK_SIGNING_SECRET": stripe_fake.WEBHOOK_SECRET,
        "STRIPE_DEFAULT_PRICE_ID": stripe_fake.DEFAULT_PRICE_ID,
        "STRIPE_API_BASE": url,
        "STRIPE_RETRY_BASE_DELAY_MS": "100",
        "STRIPE_RETRY_MAX_DELAY_MS": "1000",
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[stripe_fake.StripeFake]:
    server = stripe_fake.start()
    yield server
    server.server.stop()


@pytest.fixture(scope="module")
def billing_server(
    django_db_setup: Any, django_db_blocker: Any, fake: stripe_fake.StripeFake
) -> Iterator[LiveServer]:
    with run_daphne(server_env(**_billing_settings(fake.url))) as server:
        yield server
    with django_db_blocker.unblock():
        wait_for_sessions_to_end(server)


def _sign_up() -> Provisioned:
    return account_sign_up(
        email="owner@acme.test",
        account_name="Acme Corp",
        actor_name="Olivia Owner",
        context=Context(user_agent=UA, remote_ip="203.0.113.9"),
    )


def _client_params(provisioned: Provisioned) -> dict[str, str]:
    issued = token_create(
        type="client",
        account=provisioned.account,
        actor=provisioned.admin,
        identity=provisioned.identity,
        expires_at=timezone.now() + timedelta(days=1),
        nonce="n0nce",
    )
    return {
        "token": issued.encoded,
        "external_id": external_id(),
        "name": "laptop",
        "public_key": public_key(),
    }


async def _join(server: LiveServer, params: dict[str, str]) -> Device:
    device = server.device()
    await device.connect(CLIENT_PATH, params, DEVICE_HEADERS)
    assert await device.join("client") == reply("client", 0)
    assert (await device.recv())["event"] == "init"
    return device


async def _deliver(server: LiveServer, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = {
        "Host": API_HOST,
        "Content-Type": "application/json",
        "Stripe-Signature": stripe_fake.signature(body),
    }
    status, _, answer = await run_sync(server.http, "POST", WEBHOOK, headers, body)
    assert (status, answer) == (200, b""), answer


async def test_sign_up_plan_pause_and_resume(
    billing_server: LiveServer, fake: stripe_fake.StripeFake, settings: Any
) -> None:
    # This process signs up (and provisions) against the same fake as the server.
    settings.BILLING_ENABLED = True
    settings.STRIPE_SECRET_KEY = stripe_fake.SECRET_KEY
    settings.STRIPE_WEBHOOK_SIGNING_SECRET = stripe_fake.WEBHOOK_SECRET
    settings.STRIPE_DEFAULT_PRICE_ID = stripe_fake.DEFAULT_PRICE_ID
    settings.STRIPE_API_BASE = fake.url

    # Sign-up provisions after its commit: a customer and a default-price subscription.
    provisioned = await run_sync(_sign_up)
    account = await run_sync(Account.objects.get, pk=provisioned.account.pk)
    customer_id = account.stripe["customer_id"]
    customer = fake.customers[customer_id]
    assert customer["metadata"]["account_id"] == str(account.pk)
    assert customer["email"] == "owner@acme.test"
    (subscription,) = fake.requests("POST", "/v1/subscriptions")
    assert subscription.form["customer"] == customer_id
    assert account.stripe["subscription_id"].startswith("sub_")
    assert account.limits == {} and not account.features.get("idp_sync")

    device = await _join(billing_server, await run_sync(_client_params, provisioned))
    now = int(time.time())
    async with device:
        # The plan: Team (quantity 15) with idp_sync added by the subscription's metadata.
        await _deliver(
            billing_server,
            stripe_fake.event(
                "customer_subscription_updated",
                created=now,
                customer=customer_id,
                metadata={"idp_sync": "true"},
            ),
        )
        account = await run_sync(Account.objects.get, pk=account.pk)
        assert account.limits["users_count"] == 15
        assert account.limits["service_accounts_count"] == 100
        assert account.features["idp_sync"] is True
        assert account.features["policy_conditions"] is True
        assert account.stripe["product_name"] == "Team"

        # The admin's billing page (served by the billing-enabled daphne) shows the plan.
        name, key = await run_sync(session_cookie_for, provisioned.identity, UA)
        page = {"Cookie": f"{name}={key}", "User-Agent": UA}
        status, _, body = await run_sync(
            billing_server.http, "GET", f"/{account.slug}/settings/billing", page
        )
        assert status == 200
        assert b"Team" in body and b"15" in body

        # Paused: the account is disabled and its client's socket closes.
        await _deliver(
            billing_server,
            stripe_fake.event(
                "customer_subscription_paused", created=now + 1, customer=customer_id
            ),
        )
        await device.expect_closed()
    account = await run_sync(Account.objects.get, pk=account.pk)
    assert account.disabled_at is not None
    assert account.disabled_reason == "Stripe subscription paused"
    params = await run_sync(_client_params, provisioned)
    with pytest.raises(Rejected) as refused:
        await billing_server.device().connect(CLIENT_PATH, params, DEVICE_HEADERS)
    assert (refused.value.status, refused.value.text) == (503, ACCOUNT_DISABLED)

    # Resumed: enabled again, and the client connects and joins.
    await _deliver(
        billing_server,
        stripe_fake.event("customer_subscription_resumed", created=now + 2, customer=customer_id),
    )
    account = await run_sync(Account.objects.get, pk=account.pk)
    assert account.disabled_at is None and account.disabled_reason is None
    async with await _join(billing_server, params):
        pass
