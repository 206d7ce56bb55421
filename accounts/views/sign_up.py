"""Sign up (`/sign_up`, alias `/try`), portal.md §3.14.

GET renders the form (or the "disabled" card when the global switch is off). POST submits it;
htmx requests fired by a single input (header HX-Trigger-Name = that input's name) only
validate and answer with that field's error block, for live validation without swapping the
input the user is typing in. A successful submit renders the success card in place (as the
original LiveView did; the URL stays `/sign_up`).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.forms.sign_up import SignUpForm
from firezone.errors import Refused, ValidationFailed
from firezone.web.pages import account_url
from firezone.web.ratelimit import Limit
from firezone.web.request import HtmxRequest
from firezone.web.session import account_path, request_context
from resources.services.provisioning import Provisioned
from resources.services.sign_up import account_sign_up, sign_in_url, sign_up_enabled

TEMPLATE = "accounts/sign_up.html"
SUCCESS_TEMPLATE = "accounts/sign_up_success.html"
ERRORS_TEMPLATE = "accounts/_sign_up_field_errors.html"
PAGE_TITLE = "Sign Up"

MSG_RATE_LIMITED = "This email has been rate limited. Please try again later."
# Welcome emails: 3 per address per 30 minutes, window extended on each hit like the
# original's mailer limiter (and the portal's email-code limit).
WELCOME_EMAILS_PER_ADDRESS = Limit("sign_up_email", 3, 30 * 60, sliding=True)


def _page(request: HttpRequest, form: SignUpForm | None) -> HttpResponse:
    context = {"page_title": PAGE_TITLE, "enabled": form is not None, "form": form}
    return render(request, TEMPLATE, context)


@require_http_methods(["GET", "POST"])
def sign_up(request: HtmxRequest) -> HttpResponse:
    if not sign_up_enabled():
        # Submissions are ignored while sign-up is switched off.
        return _page(request, None)
    if request.method != "POST":
        return _page(request, SignUpForm())

    form = SignUpForm(request.POST)
    # HtmxMiddleware sets request.htmx; only an input's own request carries its name.
    field = SignUpForm.field_for_html_name(request.htmx.trigger_name if request.htmx else None)
    if field is not None:
        return _field_errors(request, form, field)
    if not form.is_valid():
        return _page(request, form)
    email = form.cleaned_data["email"]
    if not WELCOME_EMAILS_PER_ADDRESS.hit(email):  # keys are lower-cased: one per mailbox
        form.add_error("email", MSG_RATE_LIMITED)
        return _page(request, form)
    try:
        provisioned = account_sign_up(
            email=email,
            account_name=form.cleaned_data["account_name"],
            actor_name=form.cleaned_data["actor_name"],
            context=request_context(request, "browser"),
        )
    except ValidationFailed as exc:
        form.add_service_errors(exc.errors)
        return _page(request, form)
    except Refused:  # switched off while the form was being submitted
        return _page(request, None)
    return _success(request, provisioned)


def _success(request: HttpRequest, provisioned: Provisioned) -> HttpResponse:
    account = provisioned.account
    request_email_otp_url = account_url(
        account, "request_email_otp", provider_id=str(provisioned.provider.pk)
    )
    context = {
        "page_title": PAGE_TITLE,
        "account": account,
        "email": provisioned.identity.provider_identifier,
        "sign_in_url": sign_in_url(account_path(account)),
        "request_email_otp_url": request_email_otp_url,
    }
    return render(request, SUCCESS_TEMPLATE, context)


def _field_errors(request: HttpRequest, form: SignUpForm, field: str) -> HttpResponse:
    """Live validation of one input: only its errors, so fields the user has not touched yet
    stay quiet."""
    form.is_valid()
    context = {"input_id": SignUpForm.INPUT_IDS[field], "errors": form.field_errors(field)}
    return render(request, ERRORS_TEMPLATE, context)
