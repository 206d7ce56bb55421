"""The client socket's in-memory parts, without a server: the relevance filter of the change feed
(§5.6: which changes make a socket read the database), lsn handling, and the diff that turns a
recomputed resource list into pushes (deletions first, site changes as toggles, "delete then
insert" for a policy whose grant changed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from firezone.changes import Change
from gateways import wire
from gateways.consumers.client import ClientConsumer, _Grants
from gateways.models import Client
from resources.access import AccessResource, ClientAccess, Grant, SiteRef

ACCOUNT, ACTOR, CLIENT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
GROUP, OTHER_GROUP = uuid.uuid4(), uuid.uuid4()
SITE, OTHER_SITE = uuid.uuid4(), uuid.uuid4()
RESOURCE, OTHER_RESOURCE = uuid.uuid4(), uuid.uuid4()
POLICY = uuid.uuid4()


def resource(rid: uuid.UUID = RESOURCE, *, name: str = "r", sites=((SITE, "S"),)) -> AccessResource:
    return AccessResource(
        id=rid,
        type="dns",
        address=f"{name}.example.com",
        address_description=None,
        name=name,
        ip_stack="dual",
        filters=[],
        sites=tuple(SiteRef(id=s, name=n) for s, n in sites),
    )


def grant(rid: uuid.UUID = RESOURCE, policy: uuid.UUID = POLICY, **kwargs: Any) -> Grant:
    return Grant(
        policy_id=policy,
        resource_id=rid,
        actor_group_id=GROUP,
        membership_id=uuid.uuid4(),
        conditions=kwargs.get("conditions", []),
    )


class Recording(ClientConsumer):
    """A client consumer without a socket: pushes and self-messages are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.pushed: list[tuple[str, Any]] = []
        self.queued: list[dict[str, Any]] = []
        self.closed = False

    async def push(self, event: str, payload: Any) -> None:
        self.pushed.append((event, payload))

    async def _to_self(self, message: dict[str, Any]) -> None:
        self.queued.append(message)

    async def close_channel(self) -> None:
        self.closed = True


def consumer(access: ClientAccess | None = None) -> Recording:
    c = Recording()
    c._reset()
    c.account_id, c.device_id = ACCOUNT, CLIENT
    c.client = Client(
        id=CLIENT,
        account_id=ACCOUNT,
        actor_id=ACTOR,
        public_key="k" * 44,
        ipv4="100.64.0.1",
        ipv6="fd00::1",
        last_seen_remote_ip="189.172.73.153",
        last_seen_remote_ip_location_region="Ukraine",
        last_seen_version="1.4.0",
    )

    class _Subject:
        identity = None
        expires_at = datetime.now(UTC) + timedelta(days=1)

    c.subject = _Subject()  # type: ignore[assignment]
    access = access or ClientAccess(
        actor_id=ACTOR, resources={RESOURCE: resource()}, grants={RESOURCE: [grant()]}
    )
    c._adopt(_Grants(access=access, group_ids=frozenset({str(GROUP)})))
    c.told = {
        str(r.id): wire.client_resource_view(r) for r in access.connectable(c._ctx(), "1.4.0")
    }
    return c


_lsn = iter(range(1, 1_000_000))


def change(table: str, op: str, old: dict | None = None, new: dict | None = None) -> Change:
    return Change(lsn=next(_lsn), table=table, op=op, account_id=str(ACCOUNT), old=old, new=new)


def ids(**row: Any) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in row.items()}


# --- the relevance filter ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_change", "verdict"),
    [
        # account: only config matters
        (
            change(
                "accounts",
                "update",
                ids(id=ACCOUNT, name="a", config={}),
                ids(id=ACCOUNT, name="a", config={"search_domain": "x.com"}),
            ),
            ("config", {"search_domain": "x.com"}),
        ),
        (change("accounts", "update", ids(id=ACCOUNT, name="a"), ids(id=ACCOUNT, name="b")), None),
        # own client
        (change("clients", "delete", ids(id=CLIENT)), ("close", None)),
        (change("clients", "delete", ids(id=uuid.uuid4())), None),
        (
            change(
                "clients",
                "update",
                ids(id=CLIENT, verified_at=None),
                ids(id=CLIENT, verified_at="t"),
            ),
            ("verified", True),
        ),
        (change("clients", "update", ids(id=CLIENT, name="a"), ids(id=CLIENT, name="b")), None),
        # memberships of this actor only
        (change("actor_group_memberships", "insert", None, ids(actor_id=ACTOR)), ("reload", None)),
        (change("actor_group_memberships", "delete", ids(actor_id=uuid.uuid4())), None),
        # policies of the actor's groups
        (
            change("policies", "insert", None, ids(id=POLICY, actor_group_id=GROUP)),
            ("reload", None),
        ),
        (change("policies", "insert", None, ids(id=POLICY, actor_group_id=OTHER_GROUP)), None),
        (
            change(
                "policies",
                "update",
                ids(id=POLICY, actor_group_id=GROUP, conditions=[]),
                ids(id=POLICY, actor_group_id=GROUP, conditions=[{"x": 1}]),
            ),
            ("reload", str(POLICY)),
        ),
        (
            change(
                "policies",
                "update",
                ids(id=POLICY, actor_group_id=OTHER_GROUP),
                ids(id=POLICY, actor_group_id=GROUP),
            ),
            ("reload", str(POLICY)),
        ),
        (
            change(
                "policies",
                "update",
                ids(id=POLICY, actor_group_id=GROUP, description="a"),
                ids(id=POLICY, actor_group_id=GROUP, description="b"),
            ),
            None,
        ),
        (
            change(
                "policies",
                "update",
                ids(id=POLICY, actor_group_id=GROUP, disabled_at=None),
                ids(id=POLICY, actor_group_id=GROUP, disabled_at="t"),
            ),
            ("reload", None),
        ),
        # granted resources, their connections and their sites
        (change("resources", "update", ids(id=RESOURCE), ids(id=RESOURCE)), ("reload", None)),
        (change("resources", "update", ids(id=OTHER_RESOURCE), ids(id=OTHER_RESOURCE)), None),
        (change("resources", "insert", None, ids(id=uuid.uuid4())), None),
        (
            change("resource_connections", "insert", None, ids(resource_id=RESOURCE)),
            ("reload", None),
        ),
        (change("resource_connections", "delete", ids(resource_id=OTHER_RESOURCE)), None),
        (
            change("gateway_groups", "update", ids(id=SITE, name="S"), ids(id=SITE, name="T")),
            ("reload", None),
        ),
        (
            change(
                "gateway_groups",
                "update",
                ids(id=OTHER_SITE, name="S"),
                ids(id=OTHER_SITE, name="T"),
            ),
            None,
        ),
        # never for clients
        (change("flows", "delete", ids(client_id=CLIENT)), None),
        (change("gateways", "update", ids(id=uuid.uuid4()), ids(id=uuid.uuid4())), None),
    ],
)
def test_relevance_filter(the_change: Change, verdict: Any) -> None:
    assert consumer()._classify(the_change) == verdict


def test_row_images_apply_in_lsn_order_only() -> None:
    c = consumer()
    newer = Change(
        20,
        "accounts",
        "update",
        str(ACCOUNT),
        ids(id=ACCOUNT, config={}),
        ids(id=ACCOUNT, config={"a": 1}),
    )
    older = Change(
        10,
        "accounts",
        "update",
        str(ACCOUNT),
        ids(id=ACCOUNT, config={}),
        ids(id=ACCOUNT, config={"a": 0}),
    )
    assert c._classify(newer) == ("config", {"a": 1})
    assert c._classify(older) is None  # an older image of the same row arriving late


async def test_duplicates_are_dropped_but_late_commits_are_not() -> None:
    c = consumer()
    membership = Change(
        50, "actor_group_memberships", "insert", str(ACCOUNT), None, ids(actor_id=ACTOR)
    )
    await c.handle_change(membership)
    assert c.queued == [{"type": "client.recompute", "generation": c.generation}]
    c.dirty.queued = False
    await c.handle_change(membership)  # the same lsn again
    assert len(c.queued) == 1
    late = Change(40, "actor_group_memberships", "delete", str(ACCOUNT), ids(actor_id=ACTOR), None)
    await c.handle_change(late)  # committed after lsn 50 was published: still handled
    assert len(c.queued) == 2


async def test_recomputes_are_coalesced() -> None:
    c = consumer()
    for _ in range(3):
        await c.handle_change(
            change("resource_connections", "insert", None, ids(resource_id=RESOURCE))
        )
    assert len(c.queued) == 1
    assert c.dirty.reload


async def test_nothing_before_the_join() -> None:
    c = consumer()
    c.grants = None
    await c.handle_change(change("clients", "delete", ids(id=CLIENT)))
    assert not c.closed and not c.queued


# --- the diff ------------------------------------------------------------------------------------


async def test_diff_deletions_first_toggles_and_updates() -> None:
    kept, moved, gone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    access = ClientAccess(
        actor_id=ACTOR,
        resources={
            kept: resource(kept, name="kept"),
            moved: resource(moved, name="moved"),
            gone: resource(gone, name="gone"),
        },
        grants={rid: [grant(rid, uuid.uuid4())] for rid in (kept, moved, gone)},
    )
    c = consumer(access)
    new, added = resource(kept, name="kept renamed"), uuid.uuid4()
    await c._diff_and_push(
        [
            new,
            resource(moved, name="moved", sites=((OTHER_SITE, "S2"),)),
            resource(added, name="added"),
        ]
    )
    events = [(event, p if isinstance(p, str) else p["id"]) for event, p in c.pushed]
    assert events == [
        ("resource_deleted", str(moved)),
        ("resource_deleted", str(gone)),
        ("resource_created_or_updated", str(kept)),
        ("resource_created_or_updated", str(moved)),
        ("resource_created_or_updated", str(added)),
    ]
    assert set(c.told) == {str(kept), str(moved), str(added)}
    c.pushed.clear()
    await c._diff_and_push(
        [
            new,
            resource(moved, name="moved", sites=((OTHER_SITE, "S2"),)),
            resource(added, name="added"),
        ]
    )
    assert c.pushed == []


async def test_breaking_policy_update_is_delete_then_insert() -> None:
    c = consumer()
    c.dirty.queued, c.dirty.broken_policies = True, {str(POLICY)}
    await c.client_recompute({"type": "client.recompute", "generation": c.generation})
    assert [event for event, _ in c.pushed] == [
        "resource_deleted",
        "resource_created_or_updated",
    ]


async def test_breaking_update_of_a_redundant_grant_pushes_nothing() -> None:
    access = ClientAccess(
        actor_id=ACTOR,
        resources={RESOURCE: resource()},
        grants={RESOURCE: [grant(), grant(policy=uuid.uuid4())]},
    )
    c = consumer(access)
    c.dirty.queued, c.dirty.broken_policies = True, {str(POLICY)}
    await c.client_recompute({"type": "client.recompute", "generation": c.generation})
    assert c.pushed == []


async def test_verification_recomputes_in_memory() -> None:
    access = ClientAccess(
        actor_id=ACTOR,
        resources={RESOURCE: resource()},
        grants={
            RESOURCE: [
                grant(
                    conditions=[
                        {"property": "client_verified", "operator": "is", "values": ["true"]}
                    ]
                )
            ]
        },
    )
    c = consumer(access)
    assert c.told == {}
    await c.handle_change(
        change(
            "clients", "update", ids(id=CLIENT, verified_at=None), ids(id=CLIENT, verified_at="t")
        )
    )
    assert c.verified and not c.dirty.reload
    await c.client_recompute(c.queued[-1])
    assert [event for event, _ in c.pushed] == ["resource_created_or_updated"]


async def test_stale_timer_messages_are_ignored() -> None:
    c = consumer()
    c.dirty.queued = True
    await c.client_recompute({"type": "client.recompute", "generation": c.generation - 1})
    assert c.dirty.queued  # not consumed
    await c.client_periodic({"type": "client.periodic", "generation": c.generation - 1})
    assert c.pushed == []
