"""Admin page: Settings → Identity Providers list (portal.md §4.13.1) with the
"Default Authentication Provider" form."""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.models import Account
from accounts.selectors.groups import groups_count_by_provider
from accounts.selectors.identities import identities_count_by_provider
from accounts.selectors.providers import provider_get, provider_list
from accounts.services.providers import provider_assign_default, provider_clear_default
from accounts.views.identity_providers.common import (
    SYSTEM_ADAPTERS,
    adapter_label,
    is_default,
    list_url,
    page_context,
    provider_status,
    provider_url,
    sync_status,
)
from firezone.errors import NotFound, Refused, Unauthorized, ValidationFailed
from firezone.web.pages import account_url, action_of, redirect_error, redirect_info
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required, not_found
from firezone.web.tables import Column, LiveTable

logger = logging.getLogger(__name__)

MSG_DEFAULT_CLEARED = "Default authentication provider cleared"
MSG_DEFAULT_SET = "Default authentication provider set to {name}"
MSG_DEFAULT_FAILED = (
    "Failed to update default auth provider. Contact support if this issue persists."
)

# --- list (§4.13.1) -------------------------------------------------------------------------------


PROVIDERS_TABLE = LiveTable(
    id="providers",
    columns=[Column("Name", order="name"), Column("Type"), Column("Status"), Column("Sync Status")],
    row_template="accounts/identity_providers/_row.html",
    orders={"name": "name", "inserted_at": "inserted_at"},
    default_order=("inserted_at", "asc"),
    empty_message="No identity providers to display",
    empty_template="accounts/identity_providers/_empty.html",
    live_topics=("changes:auth_providers",),
)


@admin_required
@require_http_methods(["GET", "POST"])
def providers_list(request: PortalRequest, account: Account) -> HttpResponse:
    subject = request.subject
    if action_of(request) == "default_provider":
        return _set_default(request, account)
    if request.method == "POST":
        return not_found(request)
    providers = provider_list(subject)
    page = PROVIDERS_TABLE.page(request, providers)
    identities = identities_count_by_provider(subject)
    groups = groups_count_by_provider(subject)
    for row in page.rows:
        row.url = provider_url(account, row)
        row.type_label = adapter_label(row)
        row.default_badge = is_default(row)
        row.status = provider_status(account, row)
        row.sync = sync_status(account, row, identities.get(row.pk, 0), groups.get(row.pk, 0))
    candidates = [p for p in providers if p.adapter not in SYSTEM_ADAPTERS]
    current = next((p for p in candidates if is_default(p)), None)
    return render(
        request,
        "accounts/identity_providers/list.html",
        page_context(
            account,
            page_title="Identity Providers",
            breadcrumbs=[("Identity Providers Settings", list_url(account))],
            page=page,
            candidates=candidates,
            current_default=current,
            new_url=account_url(account, "identity_provider_new"),
        ),
    )


def _set_default(request: PortalRequest, account: Account) -> HttpResponse:
    subject = request.subject
    to = list_url(account)
    choice = request.POST.get("provider_id", "").strip()
    try:
        if choice in ("", "none"):
            provider_clear_default(subject=subject)
            return redirect_info(request, to, MSG_DEFAULT_CLEARED)
        provider = provider_get(subject, provider_id=choice)
        provider = provider_assign_default(subject=subject, provider=provider)
    except (NotFound, Refused, ValidationFailed, Unauthorized) as exc:
        logger.info("default provider not updated: %s", exc)
        return redirect_error(request, to, MSG_DEFAULT_FAILED)
    return redirect_info(request, to, MSG_DEFAULT_SET.format(name=provider.name))
