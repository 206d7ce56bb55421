"""Live tables shown on more than one page of the portal."""

from __future__ import annotations

from collections.abc import Sequence

from firezone.web.tables import STATUS_FILTER, Column, Filter, LiveTable


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
