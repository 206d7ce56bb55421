"""Admin pages: actors (portal.md §4.5): the list, the "Add Actor" wizard (type → user details →
identity → group memberships; service account → token), the actor page with its events, and
the edit pages.

Actor page events (POST `action`): disable, enable, delete, send_welcome_email, delete_identity,
revoke_token, revoke_all. Identity and token ids posted with an event must belong to the actor
of the page (else the standard 404).

Group memberships are edited without JavaScript state: pending additions and removals live in
the query string (`add=<group id>`, `remove=<group id>`, repeatable), so they survive the
table's search and pagination; "Save" posts them and the service applies the difference.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone

from accounts.auth import can_grant_role
from accounts.forms.actors import (
    ActorEditForm,
    ActorTypeForm,
    IdentityForm,
    ServiceAccountForm,
    ServiceAccountTokenForm,
    UserForm,
)
from accounts.models import Account, Actor, ActorGroup, AuthIdentity, AuthProvider, Token
from accounts.selectors.actors import actor_get, actor_groups_peek, actor_list
from accounts.selectors.groups import group_list_editable, group_list_for_actor
from accounts.selectors.identities import (
    identity_get,
    identity_list_for_actor,
    identity_provider_options,
)
from accounts.selectors.providers import provider_list
from accounts.selectors.tokens import token_get, tokens_list_for_actor
from accounts.services.actors import (
    actor_create,
    actor_delete,
    actor_disable,
    actor_enable,
    actor_update,
)
from accounts.services.identities import identity_create, identity_delete
from accounts.services.tokens_admin import (
    service_account_token_create,
    token_delete,
    tokens_delete_for_actor,
)
from accounts.services.welcome_emails import identity_welcome_address, identity_welcome_email_send
from firezone.errors import NotFound, Refused, Unauthorized, ValidationFailed
from firezone.icons import icon
from firezone.templatetags.portal import relative_text
from firezone.web.pages import (
    action_of,
    redirect_error,
    redirect_info,
    render_secret,
    url,
    uuids_in,
)
from firezone.web.ratelimit import Limit
from firezone.web.session import admin_required
from firezone.web.tables import STATUS_FILTER, Column, Filter, LiveTable
from gateways.presence import account_clients_topic, actor_clients_topic, list_presences_sync
from gateways.selectors.clients import client_list_for_actor, client_peek_by_actor
from resources.selectors.flows import flow_list_for

logger = logging.getLogger(__name__)

# "Send Welcome Email": 3 per identity per 3 minutes, window extended on each hit (§3.15).
WELCOME_EMAILS_PER_IDENTITY = Limit("welcome_email", 3, 3 * 60, sliding=True)

MSG_DISABLED = "Actor was disabled."
MSG_ENABLED = "Actor was enabled."
MSG_IDENTITY_DELETED = "Identity was deleted."
MSG_TOKEN_REVOKED = "Token was revoked."
MSG_WELCOME_LIMITED = "You sent too many welcome emails to this address. Please try again later."
MSG_WELCOME_FAILED = "Unknown error while sending welcome email. We're looking into it."
MSG_FORBIDDEN = "You don't have permissions to perform this action."
MSG_SYNCED_DELETE = "Synced actors can only be deleted once they have no identities left."

TYPE_LABELS = {
    Actor.Type.ACCOUNT_USER: "User",
    Actor.Type.ACCOUNT_ADMIN_USER: "User",
    Actor.Type.SERVICE_ACCOUNT: "Service Account",
    Actor.Type.API_CLIENT: "API Client",
}
ROLE_NAMES = {
    Actor.Type.ACCOUNT_USER: "user",
    Actor.Type.ACCOUNT_ADMIN_USER: "admin",
    Actor.Type.SERVICE_ACCOUNT: "service account",
    Actor.Type.API_CLIENT: "api client",
}
# UA OS name (lower case) -> icon (firezone.icons); other named systems are Linux-like.
OS_ICONS = {
    "macos": "os-macos",
    "mac os": "os-macos",
    "mac os x": "os-macos",
    "ios": "os-ios",
    "ipados": "os-ios",
    "windows": "os-windows",
    "android": "os-android",
    "ubuntu": "os-ubuntu",
    "debian": "os-debian",
    "manjaro": "os-manjaro",
}


# --- shared helpers ------------------------------------------------------------------------------


def _actor_url(account: Account, actor: Actor | Any) -> str:
    return url(account, f"/actors/{getattr(actor, 'pk', actor)}")


def _crumbs(account: Account, *rest: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Actors", url(account, "/actors")), *rest]


def _grantable(request: HttpRequest) -> list[str]:
    return [t for t in Actor.USER_TYPES if can_grant_role(request.subject, t)]


def _os_of(user_agent: str | None) -> tuple[str, str, str]:
    """(OS name, version, icon) from a client's user agent, e.g. "macOS/14.4 apple-client/1.3"."""
    name, _, rest = (user_agent or "").partition("/")  # the name may hold spaces: "Mac OS/14.5"
    name, version = name.strip(), rest.split(" ", 1)[0]
    kind = OS_ICONS.get(name.lower(), "os-linux" if name else "os-other")
    return name or "Unknown", version, icon(kind, size=18)


def _decorate_clients(clients: Iterable[Any], online: set[str]) -> None:
    for client in clients:
        client.online = str(client.pk) in online
        client.os_name, client.os_version, client.os_icon = _os_of(client.last_seen_user_agent)
        client.last_started = relative_text(client.last_seen_at)


def _online(topic: str) -> set[str]:
    """Device ids present on a presence topic (Redis; an outage shows everyone offline)."""
    try:
        return set(list_presences_sync(topic))
    except Exception:
        logger.warning("presence of %s unavailable", topic, exc_info=True)
        return set()


def _user_actor(request: HttpRequest, id: str) -> Actor:
    """A user or admin of the account (identities belong to users only)."""
    actor = actor_get(request.subject, actor_id=id)
    if not actor.is_user:
        raise NotFound()
    return actor


def _managed_actor(request: HttpRequest, id: str) -> Actor:
    """An actor whose pages live under /actors (API clients have theirs under Settings)."""
    actor = actor_get(request.subject, actor_id=id)
    if actor.is_api_client:
        raise NotFound()
    return actor


# --- list ----------------------------------------------------------------------------------------


def _name_or_email(queryset: QuerySet[Actor], value: str) -> QuerySet[Actor]:
    identities = AuthIdentity.objects.filter(actor_id=OuterRef("pk")).filter(
        Q(email__icontains=value) | Q(provider_identifier__icontains=value)
    )
    return queryset.filter(Q(name__icontains=value) | Q(Exists(identities)))


def _provider(queryset: QuerySet[Actor], value: str) -> QuerySet[Actor]:
    identities = AuthIdentity.objects.filter(actor_id=OuterRef("pk"), provider_id=value)
    return queryset.filter(Exists(identities))


def _actors_table(providers: list[tuple[str, str]]) -> LiveTable:
    return LiveTable(
        id="actors",
        columns=[
            Column("name", order="name"),
            Column("identifiers"),
            Column("groups"),
            Column("clients"),
            Column("status"),
            Column("last signed in"),
        ],
        row_template="accounts/actors/_row.html",
        orders={"name": "name", "inserted_at": "inserted_at"},
        default_order=("inserted_at", "asc"),
        filters=[
            Filter("name_or_email", _name_or_email, title="Name or Email"),
            Filter("provider_id", _provider, title="Provider", kind="uuid", choices=providers),
            STATUS_FILTER,
        ],
        empty_message="No actors to display.",
    )


def _peek_title(peek: dict[str, Any]) -> str:
    """The groups popover as a tooltip: "Eng, Ops, QA and 2 more."."""
    names = ", ".join(item.name for item in peek["items"])
    more = peek["count"] - len(peek["items"])
    return f"{names} and {more} more." if more > 0 else names


@admin_required
def actors_list(request: HttpRequest, account: Account) -> HttpResponse:
    subject = request.subject
    # A fixed list of choices: the filter widget and the value check read it several times.
    providers = [(str(p.pk), p.name) for p in provider_list(subject)]
    identities = AuthIdentity.objects.select_related("provider").order_by("inserted_at", "id")
    queryset = actor_list(subject).prefetch_related(Prefetch("identities", queryset=identities))
    page = _actors_table(providers).page(request, queryset)
    ids = [row.pk for row in page.rows]
    groups = actor_groups_peek(subject, actor_ids=ids, limit=3) if ids else {}
    clients = client_peek_by_actor(subject, actor_ids=ids, limit=5) if ids else {}
    online = _online(account_clients_topic(account.pk)) if ids else set()
    for row in page.rows:
        row.group_peek = groups.get(row.pk, {"count": 0, "items": []})
        row.groups_title = _peek_title(row.group_peek)
        row.client_peek = clients.get(row.pk, {"count": 0, "items": []})
        row.clients_more = row.client_peek["count"] - len(row.client_peek["items"])
        _decorate_clients(row.client_peek["items"], online)
    context = {"page_title": "Actors", "breadcrumbs": [("Actors", None)], "page": page}
    return render(request, "accounts/actors/list.html", context)


# --- new actor wizard ----------------------------------------------------------------------------


@admin_required
def actor_new(request: HttpRequest, account: Account) -> HttpResponse:
    form = ActorTypeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        return HttpResponseRedirect(url(account, f"/actors/{form.cleaned_data['next']}/new"))
    context = {
        "page_title": "New Actor",
        "breadcrumbs": _crumbs(account, ("Add", None)),
        "form": form,
    }
    return render(request, "accounts/actors/new.html", context)


@admin_required
def user_new(request: HttpRequest, account: Account) -> HttpResponse:
    form = UserForm(request.POST or None, grantable=_grantable(request))
    if request.method == "POST" and form.is_valid():
        try:
            actor = actor_create(
                subject=request.subject,
                name=form.cleaned_data["name"],
                type=form.cleaned_data["type"],
            )
        except ValidationFailed as exc:
            form.add_domain_errors(exc.errors)
        except Refused as exc:  # seats / admins limits, disabled account
            messages.error(request, exc.message)
        else:
            target = url(account, f"/actors/users/{actor.pk}/new_identity?next_step=edit_groups")
            return HttpResponseRedirect(target)
    context = {
        "page_title": "New User",
        "breadcrumbs": _crumbs(account, ("Add", url(account, "/actors/new")), ("User", None)),
        "form": form,
    }
    return render(request, "accounts/actors/user_new.html", context)


def _chosen_provider(providers: list[AuthProvider], request: HttpRequest) -> AuthProvider | None:
    wanted = request.POST.get("provider_id") or request.GET.get("provider_id")
    for provider in providers:
        if str(provider.pk) == wanted:
            return provider
    return providers[0] if providers else None


@admin_required
def user_new_identity(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    actor = _user_actor(request, id)
    wizard = request.GET.get("next_step") == "edit_groups"
    providers = list(identity_provider_options(subject, actor=actor))
    provider = _chosen_provider(providers, request)
    # A POST only choosing another provider (no JavaScript) re-renders that provider's form.
    submitted = request.method == "POST" and action_of(request) != "select_provider"
    form = IdentityForm(
        request.POST if submitted else None,
        providers=providers,
        provider=provider,
        initial={"provider_id": str(provider.pk) if provider else None},
    )
    if submitted and provider is not None and form.is_valid():
        try:
            identity = identity_create(
                subject=subject, actor=actor, provider=provider, **form.service_fields()
            )
        except ValidationFailed as exc:
            form.add_domain_errors(exc.errors)
        else:
            if provider.adapter == AuthProvider.Adapter.EMAIL:
                _send_welcome_quietly(request, identity)
            suffix = "/edit_groups" if wizard else ""
            return HttpResponseRedirect(_actor_url(account, actor) + suffix)
    context = {
        "page_title": "New User Identity",
        "breadcrumbs": _crumbs(
            account, (actor.name, _actor_url(account, actor)), ("Add Identity", None)
        ),
        "actor": actor,
        "form": form,
        "providers": providers,
        "provider": provider,
        "wizard": wizard,
    }
    return render(request, "accounts/actors/identity_new.html", context)


def _send_welcome_quietly(request: HttpRequest, identity: AuthIdentity) -> None:
    """The automatic invitation after adding an email identity: the identity stays even if
    the email cannot be delivered (the admin can resend it from the actor page)."""
    try:
        identity_welcome_email_send(subject=request.subject, identity=identity)
    except Exception:
        logger.exception("welcome email for identity %s failed", identity.pk)


@admin_required
def service_account_new(request: HttpRequest, account: Account) -> HttpResponse:
    form = ServiceAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actor = actor_create(
                subject=request.subject,
                name=form.cleaned_data["name"],
                type=Actor.Type.SERVICE_ACCOUNT,
            )
        except ValidationFailed as exc:
            form.add_domain_errors(exc.errors)
        except Refused as exc:
            messages.error(request, exc.message)
        else:
            return HttpResponseRedirect(
                url(account, f"/actors/service_accounts/{actor.pk}/new_identity")
            )
    context = {
        "page_title": "New Service Account",
        "breadcrumbs": _crumbs(
            account, ("Add", url(account, "/actors/new")), ("Service Account", None)
        ),
        "form": form,
    }
    return render(request, "accounts/actors/service_account_new.html", context)


@admin_required
def service_account_new_identity(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    actor = actor_get(request.subject, actor_id=id)
    if not actor.is_service_account:
        raise NotFound()
    form = ServiceAccountTokenForm(request.POST or None)
    encoded = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = service_account_token_create(
                subject=request.subject,
                actor=actor,
                name=form.cleaned_data["name"],
                expires_at=form.cleaned_data["expires_at"],
            )
        except ValidationFailed as exc:
            form.add_domain_errors(exc.errors)
        else:
            # Shown once, in this response; never stored anywhere readable.
            encoded = issued.encoded
    context = {
        "page_title": "New Service Account Token",
        "breadcrumbs": _crumbs(
            account, (actor.name, _actor_url(account, actor)), ("Create Token", None)
        ),
        "actor": actor,
        "form": form,
        "token": encoded,
    }
    return render_secret(request, "accounts/actors/service_account_token.html", context)


# --- actor page ----------------------------------------------------------------------------------

IDENTITIES_TABLE = LiveTable(
    id="identities",
    columns=[Column("identity"), Column("created"), Column("last signed in"), Column("")],
    row_template="accounts/actors/_identity_row.html",
    orders={"inserted_at": "inserted_at"},
    default_order=("inserted_at", "desc"),
    empty_message=(
        "No authentication identities to display. Create an identity to authenticate this user."
    ),
)


def _tokens_table(service_account: bool) -> LiveTable:
    return LiveTable(
        id="tokens",
        columns=[
            Column("type"),
            Column("name" if service_account else "identity"),
            Column("created"),
            Column("expires"),
            Column("last used"),
            Column(""),
        ],
        row_template="accounts/actors/_token_row.html",
        orders={"inserted_at": "inserted_at"},
        default_order=("inserted_at", "desc"),
        empty_message="No authentication tokens to display.",
        context={"service_account": service_account},
    )


def _client_name(queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
    return queryset.filter(name__icontains=value)


CLIENTS_TABLE = LiveTable(
    id="clients",
    columns=[
        Column("", css="os"),
        Column("name", order="name"),
        Column("status"),
        Column("last started", order="last_seen_at"),
        Column("created", order="inserted_at"),
    ],
    row_template="accounts/actors/_client_row.html",
    orders={"name": "name", "last_seen_at": "last_seen_at", "inserted_at": "inserted_at"},
    default_order=("last_seen_at", "desc"),
    filters=[Filter("name", _client_name, title="Name")],
    empty_message="Actor has not signed in from any Client.",
    live_mode="reload",
)

FLOWS_TABLE = LiveTable(
    id="flows",
    columns=[Column("authorized"), Column("policy"), Column("client"), Column("gateway")],
    row_template="accounts/actors/_flow_row.html",
    orders={"inserted_at": "inserted_at"},
    default_order=("inserted_at", "desc"),
    empty_message="No activity to display.",
)


def _group_name(queryset: QuerySet[ActorGroup], value: str) -> QuerySet[ActorGroup]:
    return queryset.filter(name__icontains=value)


GROUPS_TABLE = LiveTable(
    id="groups",
    columns=[Column("name", order="name")],
    row_template="accounts/actors/_group_row.html",
    orders={"name": "name"},
    default_order=("name", "asc"),
    filters=[Filter("name", _group_name, title="Name")],
    empty_message="No Groups to display.",
)


def _event_identity(request: HttpRequest, actor: Actor) -> AuthIdentity:
    identity = identity_get(request.subject, identity_id=request.POST.get("identity_id"))
    if identity.actor_id != actor.pk:
        raise NotFound()
    return identity


def _event_token(request: HttpRequest, actor: Actor) -> Token:
    token = token_get(request.subject, token_id=request.POST.get("token_id"))
    if token.actor_id != actor.pk:
        raise NotFound()
    return token


def _detail_event(request: HttpRequest, account: Account, actor: Actor) -> HttpResponse:
    subject = request.subject
    here = _actor_url(account, actor)
    action = action_of(request)
    try:
        if action == "disable":
            actor_disable(subject=subject, actor=actor)
            return redirect_info(request, here, MSG_DISABLED)
        if action == "enable":
            actor_enable(subject=subject, actor=actor)
            return redirect_info(request, here, MSG_ENABLED)
        if action == "delete":
            if actor.is_synced and identity_list_for_actor(subject, actor=actor).exists():
                return redirect_error(request, here, MSG_SYNCED_DELETE)
            actor_delete(subject=subject, actor=actor)
            return HttpResponseRedirect(url(account, "/actors"))
        if action == "send_welcome_email":
            return _send_welcome(request, here, _event_identity(request, actor))
        if action == "delete_identity":
            identity_delete(subject=subject, identity=_event_identity(request, actor))
            return redirect_info(request, here, MSG_IDENTITY_DELETED)
        if action == "revoke_token":
            token_delete(subject=subject, token=_event_token(request, actor))
            return redirect_info(request, here, MSG_TOKEN_REVOKED)
        if action == "revoke_all":
            count = tokens_delete_for_actor(subject=subject, actor=actor)
            return redirect_info(request, here, f"{count} token(s) were revoked.")
    except Refused as exc:
        return redirect_error(request, here, exc.message)
    except Unauthorized:
        return redirect_error(request, here, MSG_FORBIDDEN)
    return HttpResponseRedirect(here)


def _send_welcome(request: HttpRequest, here: str, identity: AuthIdentity) -> HttpResponse:
    if not identity_welcome_address(identity):
        return HttpResponseRedirect(here)
    if not WELCOME_EMAILS_PER_IDENTITY.hit(identity.pk):
        return redirect_error(request, here, MSG_WELCOME_LIMITED)
    try:
        sent_to = identity_welcome_email_send(subject=request.subject, identity=identity)
    except Exception:
        logger.exception("welcome email for identity %s failed", identity.pk)
        return redirect_error(request, here, MSG_WELCOME_FAILED)
    return redirect_info(request, here, f"Welcome email sent to {sent_to}")


@admin_required
def actor_detail(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    actor = actor_get(subject, actor_id=id)
    if actor.is_api_client:
        return HttpResponseRedirect(url(account, f"/settings/api_clients/{actor.pk}"))
    if request.method == "POST":
        return _detail_event(request, account, actor)

    service_account = actor.is_service_account
    identities_page = None
    can_add_identity = False
    has_identities = False
    if actor.is_user:
        identities = identity_list_for_actor(subject, actor=actor)
        identities_page = IDENTITIES_TABLE.page(request, identities)
        for identity in identities_page.rows:
            identity.welcome_to = identity_welcome_address(identity)
            identity.synced = identity.created_by == "provider"
        can_add_identity = identity_provider_options(subject, actor=actor).exists()
        has_identities = identities_page.total > 0
    tokens = tokens_list_for_actor(subject, actor=actor).select_related("identity__provider")
    tokens_page = _tokens_table(service_account).page(request, tokens)
    now = timezone.now()
    for token in tokens_page.rows:
        token.expired = token.expires_at is not None and token.expires_at <= now

    clients_topic = actor_clients_topic(actor.pk)
    clients_table = dataclasses.replace(CLIENTS_TABLE, live_topics=[clients_topic])
    clients_page = clients_table.page(request, client_list_for_actor(subject, actor_id=actor.pk))
    _decorate_clients(clients_page.rows, _online(clients_topic) if clients_page.rows else set())

    flows = flow_list_for(subject, actor=actor).select_related(
        "policy__actor_group", "policy__resource", "gateway__group"
    )
    flows_page = FLOWS_TABLE.page(request, flows)
    groups = group_list_for_actor(subject, actor=actor).select_related("provider")
    groups_page = GROUPS_TABLE.page(request, groups)

    type_label = TYPE_LABELS.get(actor.type, "Actor")
    lower = type_label.lower()
    labels = {
        "disable": f"Disable {type_label}",
        "disable_body": (
            f"Are you sure you want to disable this {lower} and revoke all its tokens?"
        ),
        "enable": f"Enable {type_label}",
        "enable_body": f"Are you sure you want to enable this {lower}?",
        "delete": f"Delete {type_label}",
        "delete_title": f"Confirm {type_label} deletion",
        "delete_body": (
            f"Are you sure you want to delete this {lower} along with all associated identities?"
        ),
    }
    context = {
        "page_title": f"Actor {actor.name}",
        "labels": labels,
        "breadcrumbs": _crumbs(account, (actor.name, None)),
        "actor": actor,
        "type_label": type_label,
        "role": ROLE_NAMES.get(actor.type, actor.type),
        "is_self": actor.pk == subject.actor_id,
        "service_account": service_account,
        "identities": identities_page,
        "can_add_identity": can_add_identity,
        "tokens": tokens_page,
        "clients": clients_page,
        "flows": flows_page,
        "groups": groups_page,
        # Synced actors come back with the next sync while they still have identities.
        "can_delete": not (actor.is_synced and has_identities),
    }
    return render(request, "accounts/actors/detail.html", context)


# --- edit ----------------------------------------------------------------------------------------


@admin_required
def actor_edit(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    actor = _managed_actor(request, id)
    form = ActorEditForm(request.POST or None, actor=actor, grantable=_grantable(request))
    if request.method == "POST" and form.is_valid():
        try:
            actor_update(
                subject=request.subject,
                actor=actor,
                name=form.cleaned_data.get("name"),
                type=form.cleaned_data.get("type"),
            )
        except ValidationFailed as exc:
            form.add_domain_errors(exc.errors)
        except Refused as exc:
            messages.error(request, exc.message)
        except Unauthorized:
            messages.error(request, MSG_FORBIDDEN)
        else:
            return HttpResponseRedirect(_actor_url(account, actor))
    type_label = TYPE_LABELS.get(actor.type, "Actor")
    context = {
        "page_title": f"Edit {actor.name}",
        "breadcrumbs": _crumbs(account, (actor.name, _actor_url(account, actor)), ("Edit", None)),
        "actor": actor,
        "type_label": type_label,
        "form": form,
    }
    return render(request, "accounts/actors/edit.html", context)


# --- group memberships ---------------------------------------------------------------------------


def _pending(
    source: Any, members: set[uuid.UUID], editable: dict[uuid.UUID, ActorGroup]
) -> tuple[list[ActorGroup], list[ActorGroup]]:
    """The pending additions and removals named by `source` (a QueryDict), keeping only those
    that change something: additions of editable non-member groups, removals of members."""
    adds = [editable[g] for g in uuids_in(source.getlist("add")) if g in editable]
    removes = [editable[g] for g in uuids_in(source.getlist("remove")) if g in members]

    def by_name(group: ActorGroup) -> tuple[str, str]:
        return group.name.lower(), str(group.pk)

    adds = [g for g in adds if g.pk not in members]
    return sorted(adds, key=by_name), sorted(removes, key=by_name)


def _with_pending(request: HttpRequest, adds: set[uuid.UUID], removes: set[uuid.UUID]) -> str:
    query = [(k, v) for k, vs in request.GET.lists() if k not in ("add", "remove") for v in vs]
    query += [("add", str(g)) for g in sorted(adds, key=str)]
    query += [("remove", str(g)) for g in sorted(removes, key=str)]
    return request.path + (f"?{urlencode(query)}" if query else "")


def _names(groups: list[ActorGroup]) -> str:
    names = [g.name for g in groups]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _confirm_body(adds: list[ActorGroup], removes: list[ActorGroup]) -> str:
    parts = []
    if adds:
        parts.append(f"add {_names(adds)}")
    if removes:
        parts.append(f"remove {_names(removes)}")
    return f"Are you sure you want to {' and '.join(parts)}?"


EDIT_GROUPS_TABLE = LiveTable(
    id="groups",
    columns=[Column("group", order="name"), Column("", css="actions")],
    row_template="accounts/actors/_edit_group_row.html",
    orders={"name": "name"},
    default_order=("name", "asc"),
    filters=[Filter("name", _group_name, title="Name")],
    empty_message="No Groups to display.",
)


@admin_required
def actor_edit_groups(request: HttpRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    actor = _managed_actor(request, id)
    editable_groups = group_list_editable(subject)
    editable = {g.pk: g for g in editable_groups}
    members = set(
        group_list_for_actor(subject, actor=actor)
        .filter(pk__in=list(editable))
        .values_list("pk", flat=True)
    )
    if request.method == "POST":
        if action_of(request) == "save":
            adds, removes = _pending(request.POST, members, editable)
            wanted = (members - {g.pk for g in removes}) | {g.pk for g in adds}
            try:
                actor_update(subject=subject, actor=actor, memberships=sorted(wanted, key=str))
            except (Refused, ValidationFailed) as exc:
                return redirect_error(request, request.get_full_path(), exc.message)
        return HttpResponseRedirect(_actor_url(account, actor))

    adds, removes = _pending(request.GET, members, editable)
    add_ids, remove_ids = {g.pk for g in adds}, {g.pk for g in removes}
    page = EDIT_GROUPS_TABLE.page(request, editable_groups)
    for row in page.rows:
        row.member = row.pk in members
        row.pending = "add" if row.pk in add_ids else "remove" if row.pk in remove_ids else None
        shown_as_member = (row.member and row.pending is None) or row.pending == "add"
        row.button = "Remove" if shown_as_member else "Add"
        if row.pending == "add":
            row.toggle_url = _with_pending(request, add_ids - {row.pk}, remove_ids)
        elif row.pending == "remove":
            row.toggle_url = _with_pending(request, add_ids, remove_ids - {row.pk})
        elif row.member:
            row.toggle_url = _with_pending(request, add_ids, remove_ids | {row.pk})
        else:
            row.toggle_url = _with_pending(request, add_ids | {row.pk}, remove_ids)
    context = {
        "page_title": f"Group Memberships: {actor.name}",
        "breadcrumbs": _crumbs(
            account, (actor.name, _actor_url(account, actor)), ("Group Memberships", None)
        ),
        "actor": actor,
        "page": page,
        "changed": bool(adds or removes),
        "confirm_body": _confirm_body(adds, removes) if adds or removes else "",
        "add_ids": ",".join(str(g.pk) for g in adds),
        "remove_ids": ",".join(str(g.pk) for g in removes),
    }
    return render(request, "accounts/actors/edit_groups.html", context)
