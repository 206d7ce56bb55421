"""Admin page: Settings → Billing (portal.md §4.10, billing_sync_jobs.md §1.11 and §1.13).

Only provisioned accounts have the page (404 otherwise). POST `action=manage` opens a Stripe
customer-portal session and redirects the browser to it; when Stripe fails the page is shown
again with the error box.

The page's CSP allows forms to end at Stripe's portal origin: `form-action` also covers the
redirects a submission follows, and the "Manage" post ends at `https://billing.stripe.com`.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlencode

from csp.decorators import csp_update
from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from accounts.models import Account
from billing.selectors.overview import billing_overview_get
from billing.services.portal import billing_portal_session_create
from billing.stripe import StripeUnavailable
from firezone.errors import Unauthorized
from firezone.web.edit import MSG_FORBIDDEN
from firezone.web.pages import account_url, action_of
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required

logger = logging.getLogger(__name__)

MSG_PORTAL_UNAVAILABLE = "Billing portal is temporarily unavailable, please try again later."
SUPPORT_EMAIL = "support@firezone.dev"
STRIPE_PORTAL_ORIGIN = "https://billing.stripe.com"
DOCS_COMMUNITY = (
    ("Discourse", "https://discourse.firez.one/?utm_source=product"),
    ("Discord", "https://discord.gg/DY8gxpSgep"),
)


def support_mailto(account: Account, actor_id: object, subject: str) -> str:
    """`mailto:support@firezone.dev` with `subject` and the footer naming the account and the
    actor (§1.13)."""
    body = (
        "\n\n---\n"
        f"Account Name: {account.name}\n"
        f"Account Slug: {account.slug}\n"
        f"Account ID: {account.pk}\n"
        f"Actor ID: {actor_id}"
    )
    return f"mailto:{SUPPORT_EMAIL}?" + urlencode(
        {"subject": subject, "body": body}, quote_via=quote
    )


def _render(request: PortalRequest, account: Account, *, error: str = "") -> HttpResponse:
    overview = billing_overview_get(request.subject)
    actor_id = request.subject.actor_id
    name = account.name
    context = {
        "page_title": "Billing",
        "breadcrumbs": [("Billing", None)],
        "billing": overview,
        "error": error,
        "community": DOCS_COMMUNITY,
        "mailto": {
            "sales": support_mailto(account, actor_id, f"Billing question: {name}"),
            "support": support_mailto(account, actor_id, f"Support request: {name}"),
            "portal": support_mailto(account, actor_id, f"Billing portal issue: {name}"),
            "terminate": support_mailto(account, actor_id, f"Account termination request: {name}"),
        },
    }
    return render(request, "billing/billing.html", context)


@csp_update({"form-action": [STRIPE_PORTAL_ORIGIN]})
@admin_required
def billing_page(request: PortalRequest, account: Account) -> HttpResponse:
    if request.method == "POST":
        if action_of(request) != "manage":
            return HttpResponseRedirect(account_url(account, "settings_billing"))
        try:
            url = billing_portal_session_create(subject=request.subject)
        except Unauthorized:
            messages.error(request, MSG_FORBIDDEN)
            return HttpResponseRedirect(account_url(account, "settings_billing"))
        except StripeUnavailable:
            return _render(request, account, error=MSG_PORTAL_UNAVAILABLE)
        return HttpResponseRedirect(url)
    return _render(request, account)
