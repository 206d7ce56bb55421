"""The access hub's in-memory parts, without a server (the live behaviour is in
test_sockets_client_*.py, the proofs against the database in test_hub_model.py and
test_hub_reload_*.py): which changes affect which actors, row images applied in lsn order only,
the diff that turns two views into pushes (deletions first, site changes as toggles), and the
"delete then insert" of a policy whose grant changed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from gateways import wire
from gateways.hub.hub import deletions_view, diff_frames
from gateways.hub.model import AccessModel, ClientView, PolicyRow, Snapshot
from resources.access import AccessResource
from resources.conditions import RequestContext

ACCOUNT, ACTOR, OTHER_ACTOR = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
GROUP, OTHER_GROUP = uuid.uuid4(), uuid.uuid4()
SITE, OTHER_SITE = uuid.uuid4(), uuid.uuid4()
RESOURCE, OTHER_RESOURCE = uuid.uuid4(), uuid.uuid4()
POLICY, OTHER_POLICY = uuid.uuid4(), uuid.uuid4()
MEMBERSHIP = uuid.uuid4()
VERSION = "1.4.0"


def model() -> AccessModel:
    """ACTOR in GROUP, whose POLICY grants RESOURCE (in SITE); OTHER_RESOURCE is granted to
    OTHER_GROUP (OTHER_ACTOR) through OTHER_SITE."""
    m = AccessModel(ACCOUNT)
    m.config = {"a": 1}
    m.sites = {SITE: "S", OTHER_SITE: "T"}
    for rid, name in ((RESOURCE, "r"), (OTHER_RESOURCE, "o")):
        m.resources[rid] = AccessResource(
            rid, "dns", f"{name}.example.com", None, name, None, [], sites=()
        )
    m.connections = {1: (RESOURCE, SITE), 2: (OTHER_RESOURCE, OTHER_SITE)}
    m.policies = {
        POLICY: PolicyRow(POLICY, RESOURCE, GROUP, [], True, None),
        OTHER_POLICY: PolicyRow(OTHER_POLICY, OTHER_RESOURCE, OTHER_GROUP, [], True, None),
    }
    m.memberships = {MEMBERSHIP: (ACTOR, GROUP), uuid.uuid4(): (OTHER_ACTOR, OTHER_GROUP)}
    return m


_lsn = iter(range(1, 1_000_000))


def change(table: str, op: str, old: dict | None = None, new: dict | None = None, lsn: int = 0):
    return {
        "lsn": lsn or next(_lsn),
        "table": table,
        "op": op,
        "account_id": str(ACCOUNT),
        "old": old,
        "new": new,
        "xid": None,
    }


def ids(**row: Any) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in row.items()}


def view_ids(m: AccessModel, actor: uuid.UUID = ACTOR) -> list[str]:
    return list(m.client_view(m.grantset(actor), ctx(), VERSION).resources)


def ctx(**kwargs: Any) -> RequestContext:
    return RequestContext(now=datetime.now(UTC), **kwargs)


POLICY_ROW = ids(id=POLICY, resource_id=RESOURCE, actor_group_id=GROUP, conditions=[])


@pytest.mark.parametrize(
    ("the_change", "affected"),
    [
        # memberships: exactly the actor whose membership changed
        (
            change(
                "actor_group_memberships",
                "insert",
                None,
                ids(id=uuid.uuid4(), actor_id=ACTOR, group_id=OTHER_GROUP),
            ),
            {ACTOR},
        ),
        (
            change(
                "actor_group_memberships",
                "delete",
                ids(id=MEMBERSHIP, actor_id=ACTOR, group_id=GROUP),
                None,
            ),
            {ACTOR},
        ),
        # policies: the members of its old and new groups
        (change("policies", "delete", POLICY_ROW, None), {ACTOR}),
        (
            change(
                "policies", "update", POLICY_ROW, {**POLICY_ROW, "actor_group_id": str(OTHER_GROUP)}
            ),
            {ACTOR, OTHER_ACTOR},
        ),
        # resources, connections and sites: the members of the groups granted the resource
        (
            change(
                "resources",
                "update",
                ids(id=RESOURCE, name="r"),
                ids(id=RESOURCE, type="dns", name="x"),
            ),
            {ACTOR},
        ),
        (
            change(
                "resource_connections",
                "delete",
                ids(id=2, resource_id=OTHER_RESOURCE, gateway_group_id=OTHER_SITE),
                None,
            ),
            {OTHER_ACTOR},
        ),
        (
            change("gateway_groups", "update", ids(id=SITE, name="S"), ids(id=SITE, name="S2")),
            {ACTOR},
        ),
        # nothing about access
        (change("accounts", "update", ids(id=ACCOUNT, slug="a"), ids(id=ACCOUNT, slug="b")), set()),
        (change("tokens", "delete", ids(id=uuid.uuid4()), None), set()),
        (change("gateways", "delete", ids(id=uuid.uuid4()), None), set()),
    ],
)
def test_effects_name_only_the_affected_actors(the_change: dict, affected: set) -> None:
    m = model()
    effects = m.apply_all([the_change])
    assert effects.actors == affected
    assert not effects.all_actors


def test_account_config_change_is_noted_and_applied() -> None:
    m = model()
    effects = m.apply_all(
        [
            change(
                "accounts",
                "update",
                ids(id=ACCOUNT, config={"a": 1}),
                ids(id=ACCOUNT, config={"b": 2}),
            )
        ]
    )
    assert effects.config_changed and m.config == {"b": 2}
    assert effects.device_changes  # gateways see account updates (slug → init)


def test_own_client_changes_are_routed_by_client_id() -> None:
    client_id = str(uuid.uuid4())
    effects = model().apply_all([change("clients", "update", {"id": client_id}, {"id": client_id})])
    assert list(effects.clients) == [client_id]


def test_row_images_apply_in_lsn_order_only() -> None:
    m = model()
    renamed = ids(id=RESOURCE, type="dns", address="r.example.com", name="new")
    older = ids(id=RESOURCE, type="dns", address="r.example.com", name="old")
    m.apply_all([change("resources", "update", older, renamed, lsn=50)])
    m.apply_all([change("resources", "update", older, older, lsn=40)])  # committed earlier
    assert m.resources[RESOURCE].name == "new"
    # a deletion leaves a tombstone an older insert cannot undo
    m.apply_all([change("resources", "delete", renamed, None, lsn=60)])
    m.apply_all([change("resources", "insert", None, renamed, lsn=55)])
    assert RESOURCE not in m.resources


def test_snapshot_visibility() -> None:
    snapshot = Snapshot.parse("100:110:103,105")
    assert snapshot.contains(99) and snapshot.contains(104)
    assert not snapshot.contains(103) and not snapshot.contains(110) and not snapshot.contains(None)


def test_grant_sets_and_views_are_shared_and_rebuilt_after_a_change() -> None:
    m = model()
    twin = uuid.uuid4()
    m.memberships[uuid.uuid4()] = (twin, GROUP)
    assert m.grantset(ACTOR) is m.grantset(twin)
    first = m.client_view(m.grantset(ACTOR), None, VERSION)
    assert first is m.client_view(m.grantset(twin), None, VERSION)
    assert list(first.resources) == [str(RESOURCE)]
    m.apply_all(
        [
            change(
                "actor_group_memberships",
                "delete",
                ids(id=MEMBERSHIP, actor_id=ACTOR, group_id=GROUP),
                None,
            )
        ]
    )
    assert view_ids(m) == []
    assert view_ids(m, twin) == [str(RESOURCE)]


def test_unconnected_resources_are_not_connectable() -> None:
    m = model()
    m.apply_all(
        [
            change(
                "resource_connections",
                "delete",
                ids(id=1, resource_id=RESOURCE, gateway_group_id=SITE),
                None,
            )
        ]
    )
    assert view_ids(m) == []


def test_conditions_are_evaluated_per_context() -> None:
    m = model()
    region = [{"property": "remote_ip_location_region", "operator": "is_in", "values": ["UA"]}]
    m.apply_all([change("policies", "update", POLICY_ROW, {**POLICY_ROW, "conditions": region})])
    grantset = m.grantset(ACTOR)
    assert grantset.conditional
    inside = m.client_view(grantset, ctx(remote_ip_location_region="UA"), VERSION)
    outside = m.client_view(grantset, ctx(remote_ip_location_region="PL"), VERSION)
    assert list(inside.resources) == [str(RESOURCE)] and list(outside.resources) == []
    assert inside is m.client_view(grantset, ctx(remote_ip_location_region="UA"), VERSION)


def test_authorize_names_the_actors_own_membership() -> None:
    m = model()
    told = m.client_view(m.grantset(ACTOR), None, VERSION)
    auth = m.authorize(
        ACTOR, str(RESOURCE), ctx=ctx(), token_expires_at=None, connectable_ids=told.resources
    )
    assert auth.ok and auth.policy_id == POLICY and auth.membership_id == MEMBERSHIP
    denied = m.authorize(
        OTHER_ACTOR, str(RESOURCE), ctx=ctx(), token_expires_at=None, connectable_ids=()
    )
    assert denied.status == "not_found"


# --- diffs ------------------------------------------------------------------------------------


def rview(rid: uuid.UUID, name: str, sites: list[uuid.UUID]) -> dict[str, Any]:
    return {
        "id": str(rid),
        "type": "dns",
        "address": f"{name}.example.com",
        "address_description": None,
        "name": name,
        "gateway_groups": [{"id": str(s), "name": "S"} for s in sites],
        "filters": [],
    }


def frames(old: ClientView, new: ClientView, **kwargs: Any) -> list[tuple[str, Any]]:
    return [(event, payload) for event, payload, _ in diff_frames(old, new, **kwargs)]


def test_diff_deletions_first_toggles_and_updates() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    old = ClientView({str(a): rview(a, "a", [SITE]), str(b): rview(b, "b", [SITE])})
    moved = rview(a, "a", [OTHER_SITE])
    new = ClientView({str(a): moved, str(c): rview(c, "c", [SITE])})
    assert frames(old, new) == [
        (wire.RESOURCE_DELETED, str(a)),  # its sites changed: a toggle
        (wire.RESOURCE_DELETED, str(b)),
        (wire.RESOURCE_CREATED_OR_UPDATED, moved),
        (wire.RESOURCE_CREATED_OR_UPDATED, rview(c, "c", [SITE])),
    ]
    renamed = ClientView({str(a): rview(a, "z", [SITE]), str(b): rview(b, "b", [SITE])})
    assert frames(old, renamed) == [(wire.RESOURCE_CREATED_OR_UPDATED, rview(a, "z", [SITE]))]
    assert frames(old, old) == []
    assert frames(old, new, deletions_only=True) == [(wire.RESOURCE_DELETED, str(b))]


def test_frames_carry_their_v1_text() -> None:
    a = uuid.uuid4()
    [(_, payload, text)] = diff_frames(ClientView({str(a): rview(a, "a", [SITE])}), ClientView({}))
    assert text == wire_text("resource_deleted", payload)


def wire_text(event: str, payload: Any) -> str:
    from firezone.phoenix.framing import V1

    return V1.encode_push("client", event, payload)


def test_breaking_policy_update_is_delete_then_insert() -> None:
    m = model()
    told = m.client_view(m.grantset(ACTOR), None, VERSION)
    region = [{"property": "remote_ip_location_region", "operator": "is_not_in", "values": ["PL"]}]
    effects = m.apply_all(
        [change("policies", "update", POLICY_ROW, {**POLICY_ROW, "conditions": region})]
    )
    assert effects.broken_policies == {str(POLICY)}
    grantset = m.grantset(ACTOR)
    context = ctx(remote_ip_location_region="UA")
    without = m.client_view(m.without_policies(grantset, effects.broken_policies), context, VERSION)
    first = diff_frames(told, without, deletions_only=True)
    assert [f[0] for f in first] == [wire.RESOURCE_DELETED]
    after = m.client_view(grantset, context, VERSION)
    second = diff_frames(deletions_view(told, first), after)
    assert [f[0] for f in second] == [wire.RESOURCE_CREATED_OR_UPDATED]


def test_disabling_a_policy_is_not_a_broken_grant() -> None:
    m = model()
    effects = m.apply_all(
        [
            change(
                "policies",
                "update",
                POLICY_ROW,
                {**POLICY_ROW, "disabled_at": "2026-01-01T00:00:00Z"},
            )
        ]
    )
    assert effects.broken_policies == set() and effects.actors == {ACTOR}
    assert view_ids(m) == []
