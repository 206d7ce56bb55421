"""Admin pages: groups (portal.md §4.6): the list, "Add Group" (name, then members), the group
page with its actors and policies, and the edit pages of static groups.

The managed "Everyone" group and groups synced from an identity provider are read-only: their
page says so, and their edit pages answer the standard 404.

Members are edited without JavaScript state: pending additions and removals live in the query
string (`add=<actor id>`, `remove=<actor id>`, repeatable), so they survive the table's search
and pagination; the confirmed "Save" posts them and the service applies just those changes.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from accounts.forms.groups import GroupForm
from accounts.models import Account, Actor, ActorGroup, AuthIdentity, AuthProvider
from accounts.selectors.actors import actor_list
from accounts.selectors.groups import (
    group_actors_peek,
    group_get,
    group_list,
    group_member_ids,
    group_members_list,
)
from accounts.selectors.providers import provider_list
from accounts.services.groups import (
    group_create,
    group_delete,
    group_members_change,
    group_update,
)
from accounts.views.actors.common import name_or_email
from firezone.errors import NotFound, Refused, ValidationFailed
from firezone.web import audit
from firezone.web.edit import edit_page
from firezone.web.events import page_events
from firezone.web.pages import account_url, action_of, redirect_error, uuids_in
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required
from firezone.web.tables import STATUS_FILTER, Column, Filter, LiveTable, name_contains
from resources.models import Policy
from resources.selectors.policies import policy_list

MSG_MANAGED = "This group is managed by Firezone and cannot be edited."
MSG_SYNCED = "This group is synced from an external source and cannot be edited."

ROLE_SUFFIXES: dict[str, str] = {
    Actor.Type.ACCOUNT_ADMIN_USER: " (admin)",
    Actor.Type.SERVICE_ACCOUNT: " (service account)",
    Actor.Type.API_CLIENT: " (api client)",
}


# --- shared helpers ------------------------------------------------------------------------------


def _group_url(account: Account, group: ActorGroup) -> str:
    return account_url(account, "group", id=group.pk)


def _crumbs(account: Account, *rest: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Groups", account_url(account, "groups")), *rest]


def _editable_group(request: PortalRequest, id: str) -> ActorGroup:
    """A static group of the account: the managed and synced ones have no edit pages."""
    group = group_get(request.subject, group_id=id)
    if not group.is_editable:
        raise NotFound()
    return group


def _with_identities(actors: QuerySet[Actor]) -> QuerySet[Actor]:
    identities = AuthIdentity.objects.select_related("provider").order_by("inserted_at", "id")
    return actors.prefetch_related(Prefetch("identities", queryset=identities))


def _decorate_actors(actors: Iterable[Actor]) -> None:
    for actor in actors:
        actor.role_suffix = ROLE_SUFFIXES.get(actor.type, "")


# --- list ----------------------------------------------------------------------------------------


def _group_provider(queryset: QuerySet[ActorGroup], value: str) -> QuerySet[ActorGroup]:
    return queryset.filter(provider_id=uuid.UUID(value))  # one of the choices: a valid id


def _groups_table(providers: list[tuple[str, str]]) -> LiveTable:
    return LiveTable(
        id="groups",
        columns=[
            Column("name", order="name"),
            Column("actors"),
            Column("Created", order="created"),
        ],
        row_template="accounts/groups/_row.html",
        orders={"name": "name", "created": "inserted_at"},
        default_order=("name", "asc"),
        filters=[
            Filter("name", name_contains, title="Name"),
            Filter(
                "provider_id", _group_provider, title="Provider", kind="uuid", choices=providers
            ),
        ],
        empty_template="accounts/groups/_empty.html",
    )


@admin_required
def groups_list(request: PortalRequest, account: Account) -> HttpResponse:
    subject = request.subject
    # Email and username & password providers never sync groups: not worth a choice.
    providers = [
        (str(p.pk), p.name)
        for p in provider_list(subject).exclude(adapter__in=AuthProvider.SINGLETON_ADAPTERS)
    ]
    page = _groups_table(providers).page(request, group_list(subject))
    ids = [row.pk for row in page.rows]
    peeks = group_actors_peek(subject, group_ids=ids, limit=3) if ids else {}
    for row in page.rows:
        row.actor_peek = peeks.get(row.pk, {"count": 0, "items": []})
        row.actors_more = row.actor_peek["count"] - len(row.actor_peek["items"])
    context = {"page_title": "Groups", "breadcrumbs": [("Groups", None)], "page": page}
    return render(request, "accounts/groups/list.html", context)


# --- new / edit ----------------------------------------------------------------------------------


@admin_required
def group_new(request: PortalRequest, account: Account) -> HttpResponse:
    def save(form: GroupForm) -> str:
        group = group_create(subject=request.subject, name=form.cleaned_data["name"])
        return account_url(account, "group_edit_actors", id=group.pk)

    return edit_page(
        request,
        GroupForm(request.POST or None, label="Group Name", placeholder="E.g. Engineering"),
        template="accounts/groups/new.html",
        context={"page_title": "New Group", "breadcrumbs": _crumbs(account, ("Add", None))},
        save=save,
    )


@admin_required
def group_edit(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    group = _editable_group(request, id)

    def save(form: GroupForm) -> str:
        group_update(subject=request.subject, group=group, name=form.cleaned_data["name"])
        return _group_url(account, group)

    form = GroupForm(
        request.POST or None, label="Name", placeholder="Group Name", initial={"name": group.name}
    )
    return edit_page(
        request,
        form,
        template="accounts/groups/edit.html",
        context={
            "page_title": f"Edit Group {group.name}",
            "breadcrumbs": _crumbs(
                account, (group.name, _group_url(account, group)), ("Edit", None)
            ),
            "group": group,
        },
        save=save,
    )


# --- detail --------------------------------------------------------------------------------------


ACTORS_TABLE = LiveTable(
    id="actors",
    columns=[Column("name", order="name"), Column("identities")],
    row_template="accounts/groups/_actor_row.html",
    orders={"name": "name"},
    default_order=("name", "asc"),
    filters=[Filter("name_or_email", name_or_email, title="Name or Email")],
    empty_template="accounts/groups/_actors_empty.html",
    live_topics=["changes:actor_group_memberships"],
)


def _resource_name(policies: QuerySet[Policy], value: str) -> QuerySet[Policy]:
    return policies.filter(resource__name__icontains=value)


POLICIES_TABLE = LiveTable(
    id="policies",
    columns=[Column("id"), Column("resource"), Column("status")],
    row_template="accounts/groups/_policy_row.html",
    orders={"inserted_at": "inserted_at"},
    default_order=("inserted_at", "asc"),
    filters=[
        Filter("resource_name", _resource_name, title="Resource Name"),
        STATUS_FILTER,
    ],
    empty_template="accounts/groups/_policies_empty.html",
    live_topics=["changes:policies"],
)


def _detail_event(request: PortalRequest, account: Account, group: ActorGroup) -> HttpResponse:
    def delete() -> HttpResponse:
        group_delete(subject=request.subject, group=group)
        return HttpResponseRedirect(account_url(account, "groups"))

    return page_events(request, here=_group_url(account, group), handlers={"delete": delete})


@admin_required
def group_detail(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    group = group_get(subject, group_id=id)
    if request.method == "POST":
        return _detail_event(request, account, group)

    edit_actors_url = account_url(account, "group_edit_actors", id=group.pk)
    add_policy_url = account_url(account, "policy_new", query={"actor_group_id": group.pk})
    # The empty states hold links: the tables pass them to their templates.
    actors_table = dataclasses.replace(
        ACTORS_TABLE,
        context={"editable": group.is_editable, "edit_actors_url": edit_actors_url},
    )
    actors = actors_table.page(request, _with_identities(group_members_list(subject, group=group)))
    _decorate_actors(actors.rows)
    policies_table = dataclasses.replace(POLICIES_TABLE, context={"add_policy_url": add_policy_url})
    policies = policies_table.page(request, policy_list(subject, actor_group_id=group.pk))
    if group.is_managed:
        notice = MSG_MANAGED
    elif group.is_synced:
        notice = MSG_SYNCED
    else:
        notice = ""
    context = {
        "page_title": f"Group {group.name}",
        "breadcrumbs": _crumbs(account, (group.name, None)),
        "group": group,
        "editable": group.is_editable,
        "notice": notice,
        "actors": actors,
        "policies": policies,
        "edit_actors_url": edit_actors_url,
        "add_policy_url": add_policy_url,
        "history": audit.history(account, "actor_groups", group.pk),
    }
    return render(request, "accounts/groups/detail.html", context)


# --- members -------------------------------------------------------------------------------------


def _pending(
    request: PortalRequest, source: Any, members: set[uuid.UUID]
) -> tuple[list[Actor], list[Actor]]:
    """The pending additions and removals named by `source` (a QueryDict), keeping only those
    that change something: additions of the account's non-members, removals of members."""
    add_ids = {a for a in uuids_in(source.getlist("add")) if a not in members}
    remove_ids = {a for a in uuids_in(source.getlist("remove")) if a in members}
    if not add_ids and not remove_ids:
        return [], []
    named = actor_list(request.subject).filter(pk__in=add_ids | remove_ids)
    adds: list[Actor] = []
    removes: list[Actor] = []
    for actor in named:  # by name: the order of the confirm dialog
        (adds if actor.pk in add_ids else removes).append(actor)
    return adds, removes


def _with_pending(request: PortalRequest, adds: set[uuid.UUID], removes: set[uuid.UUID]) -> str:
    query = [(k, v) for k, vs in request.GET.lists() if k not in ("add", "remove") for v in vs]
    query += [("add", str(a)) for a in sorted(adds, key=str)]
    query += [("remove", str(a)) for a in sorted(removes, key=str)]
    return request.path + (f"?{urlencode(query)}" if query else "")


EDIT_ACTORS_TABLE = LiveTable(
    id="actors",
    columns=[Column("actor", order="name"), Column("identities"), Column("", css="actions")],
    row_template="accounts/groups/_edit_actor_row.html",
    orders={"name": "name"},
    default_order=("name", "asc"),
    filters=[Filter("name_or_email", name_or_email, title="Name or Email")],
    empty_message="No actors to display.",
)


def _toggle_url(
    request: PortalRequest, row: Any, add_ids: set[uuid.UUID], remove_ids: set[uuid.UUID]
) -> str:
    if row.pending == "add":
        return _with_pending(request, add_ids - {row.pk}, remove_ids)
    if row.pending == "remove":
        return _with_pending(request, add_ids, remove_ids - {row.pk})
    if row.member:
        return _with_pending(request, add_ids, remove_ids | {row.pk})
    return _with_pending(request, add_ids | {row.pk}, remove_ids)


@admin_required
def group_edit_actors(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    group = _editable_group(request, id)
    members = group_member_ids(subject, group=group)
    if request.method == "POST":
        if action_of(request) == "save":
            adds, removes = _pending(request, request.POST, members)
            try:
                group_members_change(subject=subject, group=group, add=adds, remove=removes)
            except (Refused, ValidationFailed) as exc:
                return redirect_error(request, request.get_full_path(), exc.message)
        return HttpResponseRedirect(_group_url(account, group))

    adds, removes = _pending(request, request.GET, members)
    add_ids, remove_ids = {a.pk for a in adds}, {a.pk for a in removes}
    page = EDIT_ACTORS_TABLE.page(request, _with_identities(actor_list(subject)))
    _decorate_actors([*page.rows, *adds, *removes])
    for row in page.rows:
        row.member = row.pk in members
        row.pending = "add" if row.pk in add_ids else "remove" if row.pk in remove_ids else None
        shown_as_member = (row.member and row.pending is None) or row.pending == "add"
        row.button = "Remove" if shown_as_member else "Add"
        row.toggle_url = _toggle_url(request, row, add_ids, remove_ids)
    context = {
        "page_title": f"Edit Actors in {group.name}",
        "breadcrumbs": _crumbs(
            account, (group.name, _group_url(account, group)), ("Edit Actors", None)
        ),
        "group": group,
        "page": page,
        "adds": adds,
        "removes": removes,
        "changed": bool(adds or removes),
        "add_ids": ",".join(str(a.pk) for a in adds),
        "remove_ids": ",".join(str(a.pk) for a in removes),
    }
    return render(request, "accounts/groups/edit_actors.html", context)
