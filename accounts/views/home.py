"""`/`: the account chooser (portal.md §2.1 routes 1 and 2, §3.4)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.models import Account
from accounts.sign_in.flow import recent_account_ids, set_recent_account_ids
from accounts.sign_in.params import SignInParams
from accounts.validation import MSG_ID_OR_SLUG, is_uuid, is_valid_id_or_slug
from firezone.web.pages import account_url
from firezone.web.session import RESERVED_PATHS, signed_in_account_ids


@require_http_methods(["GET", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    params = SignInParams.from_request(request)
    if request.method == "POST":
        return _go_to_account(request, params)

    ids = [i for i in recent_account_ids(request) if is_uuid(i)]
    found = {str(a.pk): a for a in Account.objects.filter(pk__in=ids)}
    recent = [found[i] for i in ids if i in found]
    signed_in = signed_in_account_ids(request)
    response = render(
        request,
        "accounts/home.html",
        {
            "params": params,
            "recent": [
                {
                    "account": account,
                    "url": params.url(account_url(account, "sign_in")),
                    "signed_in": str(account.pk) in signed_in,
                }
                for account in recent
            ],
            "url_prefix": settings.EXTERNAL_URL.rstrip("/") + "/",
            "sign_up_enabled": settings.FEATURE_SIGN_UP and not params.is_client,
        },
    )
    if len(recent) != len(recent_account_ids(request)):
        # Accounts that no longer exist are pruned from the cookie (§3.4).
        set_recent_account_ids(response, [str(a.pk) for a in recent])
    return response


def _go_to_account(request: HttpRequest, params: SignInParams) -> HttpResponse:
    value = request.POST.get("account_id_or_slug", "")
    value = value.strip() if isinstance(value, str) else ""
    if not value or not is_valid_id_or_slug(value) or value.lower() in RESERVED_PATHS:
        messages.error(request, MSG_ID_OR_SLUG)
        return HttpResponseRedirect(params.url(reverse("home")))
    return HttpResponseRedirect(params.url(reverse("sign_in", kwargs={"account": value.lower()})))
