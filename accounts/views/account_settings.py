"""Admin pages: Settings → Account (portal.md §4.9) and Settings → DNS (§4.11).

Account page event (POST `action`): `delete_account` emails the deletion request to Firezone
support; the page then shows "Delete Requested" once (a one-shot session flag: like the
original, reloading offers the button again, §9 item 21).

The DNS form keeps its resolver rows in the posted form itself: "New Resolver" and the trash
buttons are submit buttons (`action=add_resolver`, `action=remove_resolver:<index>`) that
re-render the form without saving, so the page works without JavaScript; with htmx they swap the
resolver rows in place, and an htmx POST fired by one input (`HX-Trigger-Name`, no `action`)
only validates: the page swaps in that input's errors (validate as you type).
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from accounts.forms.settings import (
    PROTOCOLS,
    SEARCH_DOMAIN,
    AccountForm,
    DnsSettingsForm,
    NotificationsForm,
    outdated_gateway_enabled,
)
from accounts.models import Account
from accounts.services.accounts import account_update
from accounts.services.support_emails import account_delete_request_send
from firezone.errors import Unauthorized
from firezone.web.edit import MSG_FORBIDDEN, edit_page
from firezone.web.pages import account_url, action_of
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required

logger = logging.getLogger(__name__)

MSG_SAVED = "Save successful!"
MSG_DELETE_FAILED = "The request to delete your account could not be sent. Please try again later."
DELETE_REQUESTED_KEY = "fz_account_delete_requested"


def _settings_url(account: Account) -> str:
    return account_url(account, "settings_account")


def _crumbs(account: Account, *rest: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Account Settings", _settings_url(account) if rest else None), *rest]


# --- account settings ----------------------------------------------------------------------------


def _request_deletion(request: PortalRequest, account: Account) -> HttpResponse:
    here = _settings_url(account)
    try:
        account_delete_request_send(subject=request.subject)
    except Unauthorized:
        messages.error(request, MSG_FORBIDDEN)
    except Exception:
        logger.exception("account deletion request of %s could not be sent", account.pk)
        messages.error(request, MSG_DELETE_FAILED)
    else:
        request.session[DELETE_REQUESTED_KEY] = str(account.pk)
    return HttpResponseRedirect(here)


@admin_required
def account_settings(request: PortalRequest, account: Account) -> HttpResponse:
    if request.method == "POST":
        if action_of(request) == "delete_account":
            return _request_deletion(request, account)
        return HttpResponseRedirect(_settings_url(account))
    # Shown once after the request was sent; a reload offers the button again.
    delete_requested = request.session.pop(DELETE_REQUESTED_KEY, None) == str(account.pk)
    context = {
        "page_title": "Account",
        "breadcrumbs": _crumbs(account),
        "account": account,
        "outdated_gateway_enabled": outdated_gateway_enabled(account),
        "delete_requested": delete_requested,
    }
    return render(request, "accounts/settings/account.html", context)


@admin_required
def account_edit(request: PortalRequest, account: Account) -> HttpResponse:
    def save(form: AccountForm) -> str:
        account_update(subject=request.subject, account=account, name=form.cleaned_data["name"])
        return _settings_url(account)

    return edit_page(
        request,
        AccountForm(request.POST or None, initial={"name": account.name}),
        template="accounts/settings/account_edit.html",
        context={
            "page_title": "Edit Account",
            "breadcrumbs": _crumbs(account, ("Edit", None)),
            "account": account,
        },
        save=save,
    )


@admin_required
def notifications_edit(request: PortalRequest, account: Account) -> HttpResponse:
    current = "true" if outdated_gateway_enabled(account) else "false"
    form = NotificationsForm(request.POST or None, initial={"outdated_gateway_enabled": current})

    def save(form: NotificationsForm) -> str:
        account_update(subject=request.subject, account=account, config=form.config())
        return _settings_url(account)

    return edit_page(
        request,
        form,
        template="accounts/settings/notifications_edit.html",
        context=lambda form: {
            "page_title": "Edit Notifications",
            "breadcrumbs": _crumbs(account, ("Edit Notifications", None)),
            "outdated_gateway_selected": str(form["outdated_gateway_enabled"].value() or current),
        },
        save=save,
    )


# --- DNS -----------------------------------------------------------------------------------------


def _dns_event(request: HttpRequest, form: DnsSettingsForm) -> bool:
    """Row events re-render the posted form with a row added or removed (nothing saved)."""
    action = action_of(request)
    if action == "add_resolver":
        form.add_resolver()
        return True
    if action.startswith("remove_resolver:"):
        form.remove_resolver(action.partition(":")[2])
        return True
    return False


@admin_required
def dns_settings(request: PortalRequest, account: Account) -> HttpResponse:
    if request.method == "POST":
        form = DnsSettingsForm(request.POST)
        # Validate as you type: an htmx request fired by one input (not a row event).
        validate_only = bool(request.htmx and request.htmx.trigger_name and not action_of(request))
        if validate_only:
            form.is_valid()  # validate as you type: errors only, nothing saved
        # Row events re-render the posted form; only a plain submission saves.
        submitted = not validate_only and not _dns_event(request, form)
    else:
        form = DnsSettingsForm(account=account)
        submitted = False

    def save(form: DnsSettingsForm) -> str:
        account_update(subject=request.subject, account=account, config=form.config())
        return account_url(account, "settings_dns")

    return edit_page(
        request,
        form,
        template="accounts/settings/dns.html",
        context={
            "page_title": "DNS",
            "breadcrumbs": [("DNS Settings", None)],
            "search_domain_name": SEARCH_DOMAIN,
            "protocols": PROTOCOLS,
        },
        save=save,
        saved_message=MSG_SAVED,
        submitted=submitted,
    )
