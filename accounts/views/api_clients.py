"""Admin pages: Settings → API Clients (portal.md §4.12): the closed-beta page, the list, the
new client → new token wizard, the client page with its tokens and the edit page.

Gate: without the `rest_api` feature the list, new, detail and edit pages send the browser to
the beta page, which sends it back when the feature is on. The token page only needs the global
switch (§2.2 route 67). Detail page events (POST `action`): disable, enable, delete,
revoke_token (with `token_id`, which must be a token of this client), revoke_all.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone

from accounts.features import feature_enabled, globally_enabled
from accounts.forms.api_clients import NAME_HELP, ApiClientForm, ApiTokenForm
from accounts.models import Account, Actor
from accounts.selectors.actors import actor_get, actor_list
from accounts.selectors.tokens import tokens_list_for_actor
from accounts.services.actors import actor_create, actor_update
from accounts.services.support_emails import rest_api_beta_request_send
from accounts.services.tokens_admin import api_client_token_create
from accounts.views.actors.common import actor_events, new_token_page
from firezone.errors import NotFound, Unauthorized
from firezone.web.edit import MSG_FORBIDDEN, edit_page
from firezone.web.events import page_events
from firezone.web.pages import account_url, action_of, redirect_error
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required, not_found
from firezone.web.tables import STATUS_FILTER, Column, Filter, LiveTable, name_contains

logger = logging.getLogger(__name__)

MSG_BETA_FAILED = "The request could not be sent. Please try again later."
BETA_REQUESTED_KEY = "fz_rest_api_beta_requested"


def _list_url(account: Account) -> str:
    return account_url(account, "api_clients")


def _client_url(account: Account, actor: Actor) -> str:
    return account_url(account, "api_client", id=actor.pk)


def _crumbs(account: Account, *rest: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("API Clients", _list_url(account) if rest else None), *rest]


def _docs_url() -> str:
    """The OpenAPI docs of the REST API (an http(s) URL even when the setting is ws(s))."""
    base = str(settings.API_EXTERNAL_URL).rstrip("/")
    if base.startswith("ws"):
        base = "http" + base[2:]
    return f"{base}/swaggerui"


def rest_api_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Goes inside `admin_required`: without `rest_api` the page is the beta page (§4.12)."""

    @functools.wraps(view)
    def wrapper(request: PortalRequest, *args: Any, account: Account, **kw: Any) -> HttpResponse:
        if not feature_enabled(account, "rest_api"):
            return HttpResponseRedirect(account_url(account, "api_clients_beta"))
        return view(request, *args, account=account, **kw)

    return wrapper


def _api_client(request: PortalRequest, id: str) -> Actor:
    actor = actor_get(request.subject, actor_id=id)
    if not actor.is_api_client:
        raise NotFound()
    return actor


# --- beta ----------------------------------------------------------------------------------------


@admin_required
def api_clients_beta(request: PortalRequest, account: Account) -> HttpResponse:
    if feature_enabled(account, "rest_api"):
        return HttpResponseRedirect(_list_url(account))
    here = account_url(account, "api_clients_beta")
    if request.method == "POST":
        if action_of(request) == "request_beta":
            try:
                rest_api_beta_request_send(subject=request.subject)
            except Unauthorized:
                return redirect_error(request, here, MSG_FORBIDDEN)
            except Exception:
                logger.exception("REST API beta request of %s could not be sent", account.pk)
                return redirect_error(request, here, MSG_BETA_FAILED)
            # Shown once, like the original's page state.
            request.session[BETA_REQUESTED_KEY] = str(account.pk)
        return HttpResponseRedirect(here)
    requested = request.session.pop(BETA_REQUESTED_KEY, None) == str(account.pk)
    context = {
        "page_title": "API Clients",
        "breadcrumbs": _crumbs(account),
        "docs_url": _docs_url(),
        "requested": requested,
    }
    return render(request, "accounts/api_clients/beta.html", context)


# --- list ----------------------------------------------------------------------------------------


CLIENTS_TABLE = LiveTable(
    id="actors",
    columns=[
        Column("name", order="name"),
        Column("status"),
        Column("created at", order="inserted_at"),
    ],
    row_template="accounts/api_clients/_row.html",
    orders={"name": "name", "inserted_at": "inserted_at"},
    default_order=("inserted_at", "asc"),
    filters=[
        # API clients have no identities: their name is all there is to search.
        Filter("name_or_email", name_contains, title="Name or Email"),
        STATUS_FILTER,
    ],
    empty_message="No API Clients to display.",
)


@admin_required
@rest_api_required
def api_clients_list(request: PortalRequest, account: Account) -> HttpResponse:
    queryset = actor_list(request.subject, type=Actor.Type.API_CLIENT)
    page = CLIENTS_TABLE.page(request, queryset)
    context = {
        "page_title": "API Clients",
        "breadcrumbs": _crumbs(account),
        "docs_url": _docs_url(),
        "page": page,
    }
    return render(request, "accounts/api_clients/list.html", context)


# --- new client, new token -----------------------------------------------------------------------


@admin_required
@rest_api_required
def api_client_new(request: PortalRequest, account: Account) -> HttpResponse:
    def save(form: ApiClientForm) -> str:
        actor = actor_create(
            subject=request.subject, name=form.cleaned_data["name"], type=Actor.Type.API_CLIENT
        )
        return account_url(account, "api_client_new_token", id=actor.pk)

    return edit_page(
        request,
        ApiClientForm(request.POST or None),
        template="accounts/api_clients/new.html",
        context={
            "page_title": "New API Client",
            "breadcrumbs": _crumbs(account, ("Add", None)),
            "name_help": NAME_HELP,
        },
        save=save,
    )


@admin_required
def api_client_new_token(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    if not globally_enabled("rest_api"):
        return not_found(request)
    actor = _api_client(request, id)
    return new_token_page(
        request,
        actor,
        ApiTokenForm(request.POST or None),
        create=api_client_token_create,
        template="accounts/api_clients/new_token.html",
        context={
            "page_title": "New API Token",
            "breadcrumbs": _crumbs(
                account, (actor.name, _client_url(account, actor)), ("New Token", None)
            ),
        },
    )


# --- detail --------------------------------------------------------------------------------------

TOKENS_TABLE = LiveTable(
    id="tokens",
    columns=[
        Column("name"),
        Column("expires at"),
        Column("created by"),
        Column("last used"),
        Column("last used IP"),
        Column(""),
    ],
    row_template="accounts/api_clients/_token_row.html",
    orders={"inserted_at": "inserted_at"},
    default_order=("inserted_at", "desc"),
    empty_message="No API tokens to display.",
)


def _detail_event(request: PortalRequest, account: Account, actor: Actor) -> HttpResponse:
    here = _client_url(account, actor)
    handlers = actor_events(request, actor, here=here, gone=_list_url(account), noun="API Client")
    return page_events(request, here=here, handlers=handlers)


@admin_required
@rest_api_required
def api_client_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    actor = _api_client(request, id)
    if request.method == "POST":
        return _detail_event(request, account, actor)
    tokens = tokens_list_for_actor(request.subject, actor=actor)
    page = TOKENS_TABLE.page(request, tokens)
    now = timezone.now()
    for token in page.rows:
        token.expired = token.expires_at is not None and token.expires_at <= now
    context = {
        "page_title": f"API Client {actor.name}",
        "breadcrumbs": _crumbs(account, (actor.name, None)),
        "actor": actor,
        "tokens": page,
    }
    return render(request, "accounts/api_clients/detail.html", context)


@admin_required
@rest_api_required
def api_client_edit(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    actor = _api_client(request, id)

    def save(form: ApiClientForm) -> str:
        actor_update(subject=request.subject, actor=actor, name=form.cleaned_data["name"])
        return _client_url(account, actor)

    return edit_page(
        request,
        ApiClientForm(request.POST or None, initial={"name": actor.name}),
        template="accounts/api_clients/edit.html",
        context={
            "page_title": f"Edit {actor.name}",
            "breadcrumbs": _crumbs(
                account, (actor.name, _client_url(account, actor)), ("Edit", None)
            ),
            "actor": actor,
            "name_help": NAME_HELP,
        },
        save=save,
    )
