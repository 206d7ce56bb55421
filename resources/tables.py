"""Live tables shown on more than one page of the portal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from accounts.auth import Subject
from firezone.web.tables import STATUS_FILTER, Column, Filter, LiveTable
from resources.selectors.resources import resource_peek_actor_groups, resource_search


def resources_table(*, row_template: str, sites: bool, **options: Any) -> LiveTable:
    """Resources by name (resources list, site page): name, address, the sites (when `sites`)
    and the authorized groups (`peek_groups`); "Name or Address" search. `options`: the
    table's empty state and live updates."""
    return LiveTable(
        id="resources",
        columns=[
            Column("name", order="name"),
            Column("address", order="address"),
            *([Column("sites")] if sites else []),
            Column("Authorized groups"),
        ],
        row_template=row_template,
        orders={"name": "name", "address": "address"},
        default_order=("name", "asc"),
        filters=[Filter("name", resource_search, title="Name or Address")],
        **options,
    )


def flows_table(*, columns: Sequence[str], row_template: str, **options: Any) -> LiveTable:
    """The recent activity (authorized flows) of an actor, a client, a policy or a resource:
    newest first. `options`: its live updates."""
    return LiveTable(
        id="flows",
        columns=[Column(label) for label in columns],
        row_template=row_template,
        orders={"inserted_at": "inserted_at"},
        default_order=("inserted_at", "desc"),
        empty_message="No activity to display.",
        **options,
    )


def peek_groups(subject: Subject, rows: list[Any]) -> None:
    """The "Authorized groups" of each resource row: the first few and how many more (one query
    for the whole page)."""
    peeks = resource_peek_actor_groups(subject, rows)
    for row in rows:
        peek = peeks.get(row.pk)
        row.groups_peek = peek
        row.groups_more = peek.count - len(peek.items) if peek else 0


def resource_policies_table(
    *, row_template: str, empty_template: str, live_topics: Sequence[str] = ()
) -> LiveTable:
    """The policies granting one resource (resource page, Internet site page): id, group,
    status; "Actor Group Name" search and the status radios."""
    return LiveTable(
        id="policies",
        columns=[Column("id"), Column("group"), Column("status")],
        row_template=row_template,
        orders={"inserted_at": "inserted_at"},
        default_order=("inserted_at", "asc"),
        filters=[
            Filter(
                "group_name",
                lambda qs, v: qs.filter(actor_group__name__icontains=v),
                title="Actor Group Name",
            ),
            STATUS_FILTER,
        ],
        empty_template=empty_template,
        live_topics=live_topics,
    )
