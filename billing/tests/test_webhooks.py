"""Signature verification (billing_sync_jobs.md §1.6, scenario 7) and the webhook's answers."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from billing import webhooks
from billing.models import ProcessedStripeEvent
from billing.tests.helpers import WEBHOOK, post_event, post_raw
from tests.api import API_HOST
from tests.stripe_fake import WEBHOOK_SECRET, StripeFake, event, signature

VECTOR_BODY = b'{"id":"evt_test","object":"event"}'
VECTOR_SIGNATURE = "b502eb0262069a78d1028f34bda8fa0838cd7325e789a80c3be65f2fd6602ccf"


# --- the pure check -----------------------------------------------------------------------------


def test_the_spec_test_vector() -> None:
    assert (
        webhooks.compute_signature(secret=WEBHOOK_SECRET, timestamp=1727700300, body=VECTOR_BODY)
        == VECTOR_SIGNATURE
    )
    header = f"t=1727700300,v1={VECTOR_SIGNATURE}"
    assert (
        webhooks.verify_signature(
            header=header, body=VECTOR_BODY, secret=WEBHOOK_SECRET, now=1727700300
        )
        == 1727700300
    )


def test_header_parsing() -> None:
    assert webhooks.parse_signature_header("t=1,v1=a,v0=b,junk,v1=c,t=2") == ("1", ["a", "c"])
    assert webhooks.parse_signature_header(" t=1 , v1=a") == ("1", ["a"])


@pytest.mark.parametrize(
    ("header", "now", "message"),
    [
        (None, 1727700300, webhooks.MSG_MISSING_HEADER),
        ("", 1727700300, webhooks.MSG_MISSING_TIMESTAMP),
        (f"v1={VECTOR_SIGNATURE}", 1727700300, webhooks.MSG_MISSING_TIMESTAMP),
        ("t=1727700300,v0=abc", 1727700300, webhooks.MSG_MISSING_SIGNATURES),
        (f"t=soon,v1={VECTOR_SIGNATURE}", 1727700300, webhooks.MSG_INVALID_TIMESTAMP),
        (f"t=1727700300,v1={VECTOR_SIGNATURE}", 1727700601, webhooks.MSG_EXPIRED),
        ("t=1727700300,v1=00", 1727700300, webhooks.MSG_INVALID_SIGNATURE),
    ],
)
def test_refusals_in_order(header: str | None, now: int, message: str) -> None:
    with pytest.raises(webhooks.WebhookRejected) as exc:
        webhooks.verify_signature(header=header, body=VECTOR_BODY, secret=WEBHOOK_SECRET, now=now)
    assert exc.value.message == message


def test_tolerance_edges_and_any_candidate() -> None:
    good = f"t=1727700300,v1={VECTOR_SIGNATURE}"
    # Exactly 300 s old still passes; future timestamps pass.
    for now in (1727700600, 1727600000):
        webhooks.verify_signature(header=good, body=VECTOR_BODY, secret=WEBHOOK_SECRET, now=now)
    several = f"t=1727700300,v1=00,v1={VECTOR_SIGNATURE},v0=ff"
    webhooks.verify_signature(
        header=several, body=VECTOR_BODY, secret=WEBHOOK_SECRET, now=1727700300
    )


@pytest.mark.parametrize(
    "body",
    [b"{", b"\xff\xfe", b"[]", b'{"id":"evt_test","object":"event"}', b'{"object":"customer"}'],
)
def test_bodies_that_are_not_events(body: bytes) -> None:
    with pytest.raises(webhooks.WebhookRejected):
        webhooks.parse_event(body)


def test_a_fixture_event_parses() -> None:
    payload = event("customer_subscription_updated")
    assert webhooks.parse_event(json.dumps(payload).encode())["id"] == payload["id"]
    payload["data"]["object"]["customer"] = "not-a-customer"
    with pytest.raises(webhooks.WebhookRejected):
        webhooks.parse_event(json.dumps(payload).encode())


# --- the endpoint -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_scenario_7(stripe_fake: StripeFake) -> None:
    payload = event("product_updated_no_customer")
    body = json.dumps(payload).encode()
    now = int(time.time())

    response = post_raw(body, None)
    assert (response.status_code, response.content) == (
        400,
        b"Bad Request: missing signature header",
    )
    assert response["Content-Type"].startswith("text/plain")

    response = post_raw(body, signature(body, secret="whsec_other", t=now))
    assert (response.status_code, response.content) == (400, b"Bad Request: invalid signature")

    response = post_raw(body, signature(body, t=now - 301))
    assert (response.status_code, response.content) == (400, b"Bad Request: expired signature")

    response = post_raw(body, signature(body, t=now - 15))
    assert (response.status_code, response.content) == (200, b"")

    response = post_raw(body, f"t={now}")
    assert response.content == b"Bad Request: missing signatures"
    response = post_raw(body, "v1=abc")
    assert response.content == b"Bad Request: missing timestamp"


@pytest.mark.django_db
def test_tampered_body_is_refused(stripe_fake: StripeFake) -> None:
    payload = event("customer_subscription_deleted")
    body = json.dumps(payload).encode()
    header = signature(body)
    tampered = body.replace(b"customer.subscription.deleted", b"customer.subscription.created")
    response = post_raw(tampered, header)
    assert (response.status_code, response.content) == (400, b"Bad Request: invalid signature")
    assert stripe_fake.calls == []


@pytest.mark.django_db
def test_repeated_headers_and_bad_timestamps_are_400s(stripe_fake: StripeFake) -> None:
    body = json.dumps(event("product_updated_no_customer")).encode()
    good = signature(body)
    # Two Stripe-Signature headers reach Django joined by a comma: one list, no 500.
    assert post_raw(body, f"{good},{signature(body, secret='whsec_x')}").status_code == 200
    # The first `t` wins: the good v1 was signed with another timestamp.
    other = signature(body, secret="whsec_x", t=int(time.time()) + 5)
    response = post_raw(body, f"{other},{good}")
    assert (response.status_code, response.content) == (400, b"Bad Request: invalid signature")
    response = post_raw(body, "t=12abc,v1=00")
    assert (response.status_code, response.content) == (400, b"Bad Request: invalid timestamp")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"id": "evt_1", "object": "event", ', b"Bad Request: malformed JSON"),
        (b'["evt_1"]', b"Bad Request: not a Stripe event"),
        (b'{"id":"evt_test","object":"event"}', b"Bad Request: not a Stripe event"),
    ],
)
def test_signed_bodies_that_are_not_events(
    stripe_fake: StripeFake, body: bytes, message: bytes
) -> None:
    response = post_raw(body, signature(body))
    assert (response.status_code, response.content) == (400, message)
    assert not ProcessedStripeEvent.objects.exists()
    assert stripe_fake.calls == []


@pytest.mark.django_db
def test_billing_disabled_is_a_404(settings) -> None:
    settings.BILLING_ENABLED = False
    body = json.dumps(event("customer_subscription_deleted")).encode()
    response = post_raw(body, signature(body))
    assert response.status_code == 404
    settings.BILLING_ENABLED = True
    settings.STRIPE_WEBHOOK_SIGNING_SECRET = ""
    assert post_raw(body, signature(body)).status_code == 404


@pytest.mark.django_db
def test_only_post_and_only_on_the_api_origin(stripe_fake: StripeFake) -> None:
    assert Client().get(WEBHOOK, HTTP_HOST=API_HOST).status_code == 405
    payload = event("product_updated_no_customer")
    # On the portal origin the path is not the webhook.
    body = json.dumps(payload).encode()
    response = Client().post(
        WEBHOOK, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature(body)
    )
    assert response.status_code != 200
    assert post_event(payload).status_code == 200
