"""Admin pages: edit an actor (portal.md §4.5.8) and its group memberships (§4.5.9).

Group memberships are edited without JavaScript state: pending additions and removals live in
the query string (`add=<group id>`, `remove=<group id>`, repeatable), so they survive the
table's search and pagination; "Save" posts them and the service applies the difference."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from accounts.forms.actors import ActorEditForm
from accounts.models import Account, ActorGroup
from accounts.selectors.groups import group_list_editable, group_list_for_actor
from accounts.services.actors import actor_update
from accounts.views.actors.common import (
    TYPE_LABELS,
    actor_url,
    crumbs,
    grantable,
    managed_actor,
)
from firezone.errors import Refused, ValidationFailed
from firezone.web.edit import edit_page
from firezone.web.pages import action_of, redirect_error, uuids_in
from firezone.web.request import PortalRequest
from firezone.web.session import admin_required
from firezone.web.tables import Column, Filter, LiveTable, name_contains

# --- edit ----------------------------------------------------------------------------------------


@admin_required
def actor_edit(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    actor = managed_actor(request, id)

    def save(form: ActorEditForm) -> str:
        actor_update(
            subject=request.subject,
            actor=actor,
            name=form.cleaned_data.get("name"),
            type=form.cleaned_data.get("type"),
        )
        return actor_url(account, actor)

    return edit_page(
        request,
        ActorEditForm(request.POST or None, actor=actor, grantable=grantable(request)),
        template="accounts/actors/edit.html",
        context={
            "page_title": f"Edit {actor.name}",
            "breadcrumbs": crumbs(account, (actor.name, actor_url(account, actor)), ("Edit", None)),
            "actor": actor,
            "type_label": TYPE_LABELS.get(actor.type, "Actor"),
        },
        save=save,
    )


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
    filters=[Filter("name", name_contains, title="Name")],
    empty_message="No Groups to display.",
)


@admin_required
def actor_edit_groups(request: PortalRequest, account: Account, id: str) -> HttpResponse:
    subject = request.subject
    actor = managed_actor(request, id)
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
        return HttpResponseRedirect(actor_url(account, actor))

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
        "breadcrumbs": crumbs(
            account, (actor.name, actor_url(account, actor)), ("Group Memberships", None)
        ),
        "actor": actor,
        "page": page,
        "changed": bool(adds or removes),
        "confirm_body": _confirm_body(adds, removes) if adds or removes else "",
        "add_ids": ",".join(str(g.pk) for g in adds),
        "remove_ids": ",".join(str(g.pk) for g in removes),
    }
    return render(request, "accounts/actors/edit_groups.html", context)
