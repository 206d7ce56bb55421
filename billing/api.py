"""The billing app's entry point on the API origin: `POST /integrations/stripe/webhooks`
(billing_sync_jobs.md §1.6, portal.md §5.2 row 49): verify the signature over the raw body, hand
the event to the pipeline.

Plain Django (no DRF parsing: the signature covers the exact bytes), no CSRF, no bearer token.
Answers, all plain text: 400 `Bad Request: …` for a refused request (billing/webhooks.py), 200
empty once the event is handled (applied, skipped or refused for good), 503 when Stripe was
unavailable while handling it (Stripe retries; billing/services/events.py). With billing off
there is no signing secret: 404, like any unknown API route.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import stripe
from billing.services.events import event_process
from billing.webhooks import WebhookRejected, parse_event, verify_signature
from firezone import changes, origin
from firezone.api.exceptions import not_found

logger = logging.getLogger(__name__)

MSG_RETRY_LATER = "Service Unavailable: Stripe is unavailable, retry later"


def _text(body: str, status: int) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    secret = settings.STRIPE_WEBHOOK_SIGNING_SECRET
    if not stripe.billing_enabled() or not secret:
        if stripe.billing_enabled():
            logger.warning("Stripe webhook received but STRIPE_WEBHOOK_SIGNING_SECRET is unset")
        return not_found(request)
    body = request.body
    try:
        verify_signature(
            header=request.headers.get("Stripe-Signature"),
            body=body,
            secret=secret,
            now=int(time.time()),
        )
        event = parse_event(body)
    except WebhookRejected as exc:
        return _text(exc.message, 400)
    try:
        # Rows it writes name the webhook as their writer (firezone/origin.py).
        with changes.origin(origin.system("stripe_webhook")):
            event_process(event=event)
    except stripe.StripeUnavailable:
        return _text(MSG_RETRY_LATER, 503)
    return HttpResponse(b"", status=200, content_type="text/plain; charset=utf-8")
