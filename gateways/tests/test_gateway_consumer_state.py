"""The gateway socket's in-memory state without a server: flow-cache pruning, §5.5 decisions
that need no database (the live behaviour is in test_sockets_gateway_*.py). Each change reaches
the socket once: de-duplication is the hub's (gateways/tests/test_hub.py)."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from typing import Any

from firezone.changes import Change
from gateways.consumers.gateway import GatewayConsumer

C, R, R2 = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())


class Recording(GatewayConsumer):
    """A joined gateway socket whose pushes are recorded instead of sent."""

    def __init__(self) -> None:
        super().__init__()
        self.flows, self._inbox = {}, []
        self.device_id = uuid.uuid4()
        self.account_id = uuid.uuid4()
        self.joined_topic = "gateway"
        self.watch = object()  # type: ignore[assignment]  # a stand-in: only its identity counts
        self.pushed: list[tuple[str, Any]] = []

    async def push(self, event: str, payload: Any) -> None:
        self.pushed.append((event, payload))


def flow_delete(consumer: Recording, flow_id: str, lsn: int, **image: Any) -> dict[str, Any]:
    old = {
        "id": flow_id,
        "gateway_id": str(consumer.device_id),
        "client_id": C,
        "resource_id": R,
        **image,
    }
    return asdict(Change(lsn=lsn, table="flows", op="delete", account_id=None, old=old, new=None))


def test_prune_drops_expired_flows_and_empty_pairs() -> None:
    consumer = Recording()
    now = time.time()
    consumer.flows = {(C, R): {"a": int(now) - 1, "b": int(now) + 60}, (C, R2): {"c": int(now)}}
    consumer.prune(now)
    assert consumer.flows == {(C, R): {"b": int(now) + 60}}
    assert consumer.pushed == []


async def test_other_flows_left_gives_the_max_remaining_expiry_once_per_change() -> None:
    consumer = Recording()
    later = int(time.time()) + 3600
    latest = later + 3600
    consumer.flows = {(C, R): {"f1": later, "f2": latest, "f3": later}}
    await consumer.handle_hub_change(flow_delete(consumer, "f2", lsn=10))
    await consumer.handle_hub_change(flow_delete(consumer, "f2", lsn=10))  # gone: nothing
    # A lower number delivered late (another transaction committed first) still counts.
    await consumer.handle_hub_change(flow_delete(consumer, "f3", lsn=9))
    expiry = "access_authorization_expiry_updated"
    assert consumer.pushed == [
        (expiry, {"client_id": C, "resource_id": R, "expires_at": later}),
        (expiry, {"client_id": C, "resource_id": R, "expires_at": later}),
    ]
    assert consumer.flows == {(C, R): {"f1": later}}


async def test_unknown_flows_and_other_gateways_are_ignored() -> None:
    consumer = Recording()
    expiry = int(time.time()) + 60
    consumer.flows = {(C, R): {"f1": expiry}}
    await consumer.handle_hub_change(flow_delete(consumer, "other", lsn=1))
    await consumer.handle_hub_change(
        flow_delete(consumer, "f1", lsn=2, gateway_id=str(uuid.uuid4()))
    )
    assert consumer.pushed == []
    assert consumer.flows == {(C, R): {"f1": expiry}}


async def test_addressability_change_rejects_and_forgets_only_that_resource() -> None:
    consumer = Recording()
    expiry = int(time.time()) + 60
    consumer.flows = {(C, R): {"f1": expiry}, (C, R2): {"f2": expiry}}
    old = {"id": R, "type": "dns", "address": "a.example.com", "ip_stack": "dual", "filters": []}
    change = asdict(
        Change(
            lsn=1,
            table="resources",
            op="update",
            account_id=None,
            old=old,
            new={**old, "ip_stack": "ipv4_only"},
        )
    )
    await consumer.handle_hub_change(change)
    assert consumer.pushed == [("reject_access", {"client_id": C, "resource_id": R})]
    assert consumer.flows == {(C, R2): {"f2": expiry}}
    # The flow deletions of the same transaction then mean nothing.
    await consumer.handle_hub_change(flow_delete(consumer, "f1", lsn=2))
    assert len(consumer.pushed) == 1


async def test_nothing_happens_before_the_join() -> None:
    consumer = Recording()
    consumer.joined_topic = None
    consumer.flows = {(C, R): {"f1": int(time.time()) + 60}}
    await consumer.handle_hub_change(flow_delete(consumer, "f1", lsn=1))
    await consumer.gateway_reject_access({"client_id": C, "resource_id": R})
    assert consumer.pushed == []


async def test_changes_are_queued_until_the_socket_works_through_them() -> None:
    consumer = Recording()
    expiry = int(time.time()) + 60
    consumer.flows = {(C, R): {"f1": expiry, "f2": expiry + 60}}
    consumer.hub_changes([flow_delete(consumer, "f1", lsn=1)])
    assert consumer.pushed == []  # queued, not applied inside the hub's call
    worker = consumer._worker
    assert worker is not None
    await worker
    assert consumer.pushed == [
        (
            "access_authorization_expiry_updated",
            {"client_id": C, "resource_id": R, "expires_at": expiry + 60},
        )
    ]
