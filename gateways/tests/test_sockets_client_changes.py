"""The client socket against a live daphne: what admin changes push to a joined client
(protocol.md §7 scenarios 27-41: account, grants, policies, sites, resources, time windows,
the client's own deletion), asserting whole frames.

Shared setup: gateways/tests/_sockets_client.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accounts.services.accounts import account_update
from accounts.services.groups import membership_add, membership_remove
from accounts.tests.factories import GroupFactory
from gateways.models import Site
from gateways.services.clients import client_delete, client_remove_verification, client_verify
from gateways.services.sites import site_update
from gateways.tests._sockets_client import (
    ClientWorld,
    admin_do,
    client_world,
    delete_atomically,
    expect_pushes,
    interface,
    join_client,
    push,
    view,
)
from gateways.tests.factories import SiteFactory
from resources.models import Resource, ResourceConnection
from resources.services.policies import policy_update
from resources.services.resources import resource_update
from resources.tests.factories import PolicyFactory
from tests.live import frame, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# ------------------------------------------------------------------ 27, 28: account changes


async def test_27_config_change_pushes_config_changed(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        await admin_do(
            cw, account_update, account=cw.account, config={"search_domain": "new.example.com"}
        )
        assert await joined.device.recv() == push(
            "config_changed", {"interface": interface(joined.client, "new.example.com")}
        )
        await joined.device.expect_nothing(0.3)


async def test_28_account_rename_pushes_nothing(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        await admin_do(cw, account_update, account=cw.account, name="Renamed")
        await joined.device.expect_nothing(0.6)


# ------------------------------------------------------------------ 29-32: grants


async def test_29_30_membership_grants_and_revokes(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        s3 = SiteFactory(account=cw.account, name="S3")
        g3 = GroupFactory(account=cw.account, name="G3")
        r3 = cw.resource(s3, name="r3", address="r3.example.com", address_description="three")
        cw.grant(r3, group=g3)
        cw.extra.update(s3=s3, g3=g3, r3=r3)
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r3 = joined.device, cw.extra["r3"]
    async with device:
        await admin_do(cw, membership_add, group=cw.extra["g3"], actor=cw.w.actor)
        assert await device.recv() == push("resource_created_or_updated", view(r3, cw.extra["s3"]))
        await admin_do(cw, membership_remove, group=cw.extra["g3"], actor=cw.w.actor)
        assert await device.recv() == push("resource_deleted", str(r3.pk))
        await device.expect_nothing(0.3)


async def test_31_redundant_grants(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        g4, g5 = cw.group_with_member("G4"), cw.group_with_member("G5")
        r4 = cw.resource(cw.site, name="r4", address="r4.example.com")
        cw.grant(r4, group=g4)
        cw.grant(r4, group=g5)
        cw.extra.update(g4=g4, g5=g5, r4=r4)
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device = joined.device
    async with device:
        await admin_do(cw, membership_remove, group=cw.extra["g4"], actor=cw.w.actor)
        await device.expect_nothing(0.6)
        await admin_do(cw, membership_remove, group=cw.extra["g5"], actor=cw.w.actor)
        assert await device.recv() == push("resource_deleted", str(cw.extra["r4"].pk))


async def test_32_verification_condition(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        r5 = cw.resource(cw.site, name="r5", address="r5.example.com")
        cw.grant(
            r5,
            conditions=[{"property": "client_verified", "operator": "is", "values": ["true"]}],
        )
        cw.extra["r5"] = r5
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r5 = joined.device, cw.extra["r5"]
    async with device:
        assert str(r5.pk) not in {r["id"] for r in joined.init["payload"]["resources"]}
        await admin_do(cw, client_verify, client=joined.client)
        assert await device.recv() == push("resource_created_or_updated", view(r5, cw.site))
        await admin_do(cw, client_remove_verification, client=joined.client)
        assert await device.recv() == push("resource_deleted", str(r5.pk))
        await device.expect_nothing(0.3)


# ------------------------------------------------------------------ 33-39: policies, sites


async def test_33_site_rename_toggles_its_resources(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    device = joined.device
    async with device:
        await admin_do(cw, site_update, site=cw.site, name="S renamed")
        frames = await expect_pushes(device, 6)
        site = Site.objects.get(pk=cw.site.pk)
        ids = {str(r.pk) for r in (cw.rdns, cw.rcidr, cw.rip)}
        # Deletions first, then the re-creations with the new site name.
        assert [f["event"] for f in frames] == ["resource_deleted"] * 3 + [
            "resource_created_or_updated"
        ] * 3
        assert {f["payload"] for f in frames[:3]} == ids
        created = {f["payload"]["id"]: f for f in frames[3:]}
        assert set(created) == ids
        for resource in (cw.rdns, cw.rcidr, cw.rip):
            assert created[str(resource.pk)] == push(
                "resource_created_or_updated", view(resource, site)
            )
        await device.expect_nothing(0.3)


async def test_34_35_policy_updates(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        r6 = cw.resource(cw.site, name="r6", address="r6.example.com")
        cw.extra.update(r6=r6, policy=cw.grant(r6))
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r6, policy = joined.device, cw.extra["r6"], cw.extra["policy"]
    async with device:
        # 35: a cosmetic change.
        await admin_do(cw, policy_update, policy=policy, description="just words")
        await device.expect_nothing(0.6)
        # 34: a breaking change that still grants → delete, then insert.
        await admin_do(
            cw,
            policy_update,
            policy=policy,
            conditions=[
                {"property": "remote_ip_location_region", "operator": "is_not_in", "values": ["BR"]}
            ],
        )
        assert await device.recv() == push("resource_deleted", str(r6.pk))
        assert await device.recv() == push("resource_created_or_updated", view(r6, cw.site))
        # ... and one that no longer grants → delete only.
        await admin_do(
            cw,
            policy_update,
            policy=policy,
            conditions=[
                {"property": "remote_ip_location_region", "operator": "is_in", "values": ["BR"]}
            ],
        )
        assert await device.recv() == push("resource_deleted", str(r6.pk))
        await device.expect_nothing(0.5)


async def test_36_37_site_moves_are_toggles(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        s2 = SiteFactory(account=cw.account, name="S2")
        s3 = SiteFactory(account=cw.account, name="S3")
        r7 = cw.resource(cw.site, name="r7", address="r7.example.com")
        cw.grant(r7)
        cw.extra.update(s2=s2, s3=s3, r7=r7)
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r7, s2, s3 = joined.device, cw.extra["r7"], cw.extra["s2"], cw.extra["s3"]
    async with device:
        # 36: moved from S to S2.
        await admin_do(cw, resource_update, resource=r7, connections=[s2.pk])
        assert await device.recv() == push("resource_deleted", str(r7.pk))
        assert await device.recv() == push("resource_created_or_updated", view(r7, s2))
        await device.expect_nothing(0.3)
        # 37: a second site, then back to one.
        await admin_do(cw, resource_update, resource=r7, connections=[s2.pk, s3.pk])
        assert await device.recv() == push("resource_deleted", str(r7.pk))
        assert await device.recv() == push("resource_created_or_updated", view(r7, s2, s3))
        await admin_do(cw, resource_update, resource=r7, connections=[s3.pk])
        assert await device.recv() == push("resource_deleted", str(r7.pk))
        assert await device.recv() == push("resource_created_or_updated", view(r7, s3))
        await device.expect_nothing(0.3)


async def test_38_last_site_removed(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        r8 = cw.resource(cw.site, name="r8", address="r8.example.com")
        cw.grant(r8)
        cw.extra["r8"] = r8
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r8 = joined.device, cw.extra["r8"]
    async with device:
        await run_sync(delete_atomically, ResourceConnection.objects.filter(resource=r8))
        assert await device.recv() == push("resource_deleted", str(r8.pk))
        await device.expect_nothing(0.5)


async def test_39_resource_rename_is_an_update(live) -> None:
    def setup() -> ClientWorld:
        cw = client_world()
        r9 = cw.resource(cw.site, name="r9", address="r9.example.com")
        cw.grant(r9)
        cw.extra["r9"] = r9
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r9 = joined.device, cw.extra["r9"]
    async with device:
        await admin_do(cw, resource_update, resource=r9, name="r9 renamed")
        assert await device.recv() == push("resource_created_or_updated", view(r9, cw.site))
        assert (await run_sync(lambda: Resource.objects.get(pk=r9.pk).name)) == "r9 renamed"
        await device.expect_nothing(0.3)


async def test_irrelevant_changes_push_nothing(live) -> None:
    """Changes of other actors' groups, other resources and other sites concern nobody here."""

    def setup() -> ClientWorld:
        cw = client_world()
        other_group = GroupFactory(account=cw.account, name="others")
        other_site = SiteFactory(account=cw.account, name="elsewhere")
        other = cw.resource(other_site, name="other", address="other.example.com")
        cw.extra.update(other_group=other_group, other_site=other_site, other=other)
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device = joined.device
    async with device:

        def changes_elsewhere() -> None:
            subject = cw.admin()
            PolicyFactory(account=cw.account, actor_group=cw.extra["other_group"])
            resource_update(subject=subject, resource=cw.extra["other"], name="renamed")
            site_update(subject=subject, site=cw.extra["other_site"], name="elsewhere 2")

        await run_sync(changes_elsewhere)
        await device.expect_nothing(0.6)


# ------------------------------------------------------------------ 40: time windows


async def test_40_time_window_opens(live) -> None:
    now = datetime.now(UTC)
    if now.hour == 23 and now.minute >= 59:
        pytest.skip("the window would cross midnight")
    start = now + timedelta(seconds=3)
    day = "MTWRFSU"[start.weekday()]

    def setup() -> ClientWorld:
        cw = client_world()
        r10 = cw.resource(cw.site, name="r10", address="r10.example.com")
        cw.grant(
            r10,
            conditions=[
                {
                    "property": "current_utc_datetime",
                    "operator": "is_in_day_of_week_time_ranges",
                    "values": [f"{day}/{start:%H:%M:%S}-23:59:59/UTC"],
                }
            ],
        )
        cw.extra["r10"] = r10
        return cw

    cw = await run_sync(setup)
    joined = await join_client(live, cw)
    device, r10 = joined.device, cw.extra["r10"]
    async with device:
        assert str(r10.pk) not in {r["id"] for r in joined.init["payload"]["resources"]}
        # The server recomputes every 2 s (tests.live.SERVER_ENV; 60 s in production).
        assert await device.recv(timeout=10) == push(
            "resource_created_or_updated", view(r10, cw.site)
        )


# ------------------------------------------------------------------ 41: own client deleted


async def test_41_client_deleted_closes_the_channel(live) -> None:
    cw = await run_sync(client_world)
    joined = await join_client(live, cw)
    async with joined.device:
        await admin_do(cw, client_delete, client=joined.client)
        assert await joined.device.recv() == frame("client", "phx_close", {})
        await joined.device.expect_closed()
