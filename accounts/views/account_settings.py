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
from firezone.errors import Refused, Unauthorized, ValidationFailed
from firezone.web.pages import action_of, redirect_info, url
from firezone.web.session import admin_required

logger = logging.getLogger(__name__)

MSG_SAVED = "Save successful!"
MSG_FORBIDDEN = "You don't have permissions to perform this action."
MSG_DELETE_FAILED = "The request to delete your account could not be sent. Please try again later."
DELETE_REQUESTED_KEY = "fz_account_delete_requested"


def _settings_url(account: Account) -> str:
    return url(account, "/settings/account")


def _crumbs(account: Account, *rest: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Account Settings", _settings_url(account) if rest else None), *rest]


# --- account settings ----------------------------------------------------------------------------


def _request_deletion(request: HttpRequest, account: Account) -> HttpResponse:
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
def account_settings(request: HttpRequest, account: Account) -> HttpResponse:
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
def account_edit(request: HttpRequest, account: Account) -> HttpResponse:
    form = AccountForm(request.POST or None, initial={"name": account.name})
    if request.method == "POST" and form.is_valid():
        try:
            account_update(subject=request.subject, account=account, name=form.cleaned_data["name"])
        except ValidationFailed as exc:
            form.add_domain_errors(exc.errors)
        except Unauthorized:
            messages.error(request, MSG_FORBIDDEN)
        else:
            return HttpResponseRedirect(_settings_url(account))
    context = {
        "page_title": "Edit Account",
        "breadcrumbs": _crumbs(account, ("Edit", None)),
        "account": account,
        "form": form,
    }
    return render(request, "accounts/settings/account_edit.html", context)


@admin_required
def notifications_edit(request: HttpRequest, account: Account) -> HttpResponse:
    current = "true" if outdated_gateway_enabled(account) else "false"
    form = NotificationsForm(request.POST or None, initial={"outdated_gateway_enabled": current})
    if request.method == "POST" and form.is_valid():
        try:
            account_update(subject=request.subject, account=account, config=form.config())
        except (ValidationFailed, Refused) as exc:
            messages.error(request, exc.message)
        except Unauthorized:
            messages.error(request, MSG_FORBIDDEN)
        else:
            return HttpResponseRedirect(_settings_url(account))
    selected = form["outdated_gateway_enabled"].value() or current
    context = {
        "page_title": "Edit Notifications",
        "breadcrumbs": _crumbs(account, ("Edit Notifications", None)),
        "form": form,
        "outdated_gateway_selected": str(selected),
    }
    return render(request, "accounts/settings/notifications_edit.html", context)


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
def dns_settings(request: HttpRequest, account: Account) -> HttpResponse:
    here = url(account, "/settings/dns")
    if request.method == "POST":
        form = DnsSettingsForm(request.POST)
        if request.htmx and request.htmx.trigger_name and not action_of(request):  # type: ignore[attr-defined]
            form.is_valid()  # validate as you type: errors only, nothing saved
        elif not _dns_event(request, form) and form.is_valid():
            try:
                account_update(subject=request.subject, account=account, config=form.config())
            except ValidationFailed as exc:
                form.add_domain_errors(exc.errors)
            except Unauthorized:
                messages.error(request, MSG_FORBIDDEN)
            else:
                return redirect_info(request, here, MSG_SAVED)
    else:
        form = DnsSettingsForm(account=account)
    context = {
        "page_title": "DNS",
        "breadcrumbs": [("DNS Settings", None)],
        "form": form,
        "search_domain_name": SEARCH_DOMAIN,
        "protocols": PROTOCOLS,
    }
    return render(request, "accounts/settings/dns.html", context)
