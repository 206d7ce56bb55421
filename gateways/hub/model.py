"""`AccessModel`: one account's access rules in memory (protocol.md §5.2), and its change applier.

Loaded with a fixed number of queries whatever the account's size (`AccessModel.load`, 7 queries
in one REPEATABLE READ snapshot): the account row, resources, resource↔site connections, sites,
policies, memberships, and the snapshot itself. Kept current by `apply(change)` with the row
images of the change feed (`firezone.changes`), never by reading the database again.

Correctness rules (the Hypothesis test in gateways/tests/test_hub_model.py checks them against
fresh loads after random service writes):

* A change whose transaction is visible in the load's snapshot is already in the model: skipped
  (`snapshot_contains(xid)`).
* Otherwise each row keeps the image with the highest change number (`lsn`) seen for it: row
  locks make the `lsn` of one row's changes increase in commit order (`firezone.changes.delete`
  takes it after the rows are deleted), so two transactions published out of order still leave
  the newer image, and a deletion leaves a tombstone that an older insert cannot undo.

Derived data is interned and shared: the grants of a set of groups (`GrantSet`, one per distinct
set of groups among the connected actors) and the client resource views computed from it
(`ClientView`, one per grant set, client version and — only when conditions apply — outcome of
the conditions). Any change that can alter access clears these caches; they are rebuilt lazily
by the first socket that asks, the others share the result.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from accounts.models import Account, ActorGroupMembership
from firezone.catchup import Snapshot
from firezone.phoenix.framing import _dumps
from gateways import wire
from gateways.models import Site
from resources import conditions as conds
from resources.access import AccessResource, Authorization, ClientAccess, Grant, SiteRef
from resources.models import Policy, Resource, ResourceConnection
from resources.selectors.policies import policy_order
from resources.versions import adapt_resource_for_version

TIME_PROPERTY: Final = "current_utc_datetime"
# Policy fields whose change is handled as "delete, then insert" (§5.6).
POLICY_GRANT_FIELDS: Final = ("conditions", "resource_id", "actor_group_id")
# Tables whose rows the model holds.
MODEL_TABLES: Final = frozenset(
    {
        "accounts",
        "resources",
        "resource_connections",
        "gateway_groups",
        "policies",
        "actor_group_memberships",
    }
)


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _ms(value: Any) -> datetime | None:
    """A timestamp at the change images' precision (milliseconds), for a stable policy order."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    if parsed is None:
        return None
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class PolicyRow:
    id: uuid.UUID
    resource_id: uuid.UUID
    group_id: uuid.UUID
    conditions: tuple[Any, ...] | list[Any]
    enabled: bool
    inserted_at: datetime | None

    @property
    def order(self) -> tuple[Any, ...]:
        return policy_order(self.inserted_at, self.id)  # the one order every loader uses


@dataclass(eq=False, slots=True)
class GrantSet:
    """The grants of one set of groups: shared by every actor with exactly those groups."""

    access: ClientAccess
    conditional: bool  # some grant has conditions: the outcome depends on the socket's context
    time_bound: bool  # some grant has a time-window condition
    views: dict[str | None, ClientView] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class ClientView:
    """What a client is told: resource id → client resource view, in display order. Interned:
    sockets keep a reference, and two sockets with the same view share the object."""

    resources: dict[str, dict[str, Any]]
    _json: str | None = None

    def resources_json(self) -> str:
        """The resources as the JSON list of an `init` (encoded once per view)."""
        if self._json is None:
            self._json = _dumps(list(self.resources.values()))
        return self._json


@dataclass(slots=True)
class Effects:
    """What a batch of changes means for the sockets of the account."""

    actors: set[uuid.UUID] = field(default_factory=set)  # whose access may have changed
    all_actors: bool = False
    broken_policies: set[str] = field(default_factory=set)  # "delete, then insert"
    config_changed: bool = False
    clients: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # client id → changes
    device_changes: list[dict[str, Any]] = field(default_factory=list)  # for gateway sockets

    @property
    def access(self) -> bool:
        return self.all_actors or bool(self.actors)


class AccessModel:
    """One account's access model. Not thread-safe: used from one event loop."""

    def __init__(self, account_id: Any) -> None:
        self.account_id = uuid.UUID(str(account_id))
        self.snapshot = Snapshot(0, 0, frozenset())
        self.config: dict[str, Any] = {}
        self.slug = ""
        self.resources: dict[uuid.UUID, AccessResource] = {}
        self.connections: dict[Any, tuple[uuid.UUID, uuid.UUID]] = {}  # id → (resource, site)
        self.sites: dict[uuid.UUID, str] = {}
        self.policies: dict[uuid.UUID, PolicyRow] = {}
        self.memberships: dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]] = {}  # id → (actor, group)
        self.row_lsn: dict[tuple[str, str], int] = {}
        self._reset_derived()

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, account_id: Any) -> AccessModel:
        """Sync: read the account's access model in one snapshot (8 statements, 7 reads)."""
        model = cls(account_id)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                # Give way to a pending exclusive lock (a migration, a TRUNCATE) rather than
                # deadlock with it: the hub retries the load (`AccountHub.reload`).
                cursor.execute("SET LOCAL lock_timeout = '500ms'")
                cursor.execute("SELECT pg_current_snapshot()::text")
                model.snapshot = Snapshot.parse(cursor.fetchone()[0])
            account = (
                Account.objects.filter(pk=model.account_id).values_list("config", "slug").first()
            )
            if account is not None:
                model.config, model.slug = account[0] or {}, account[1] or ""
            for row in Resource.objects.filter(account_id=model.account_id).values_list(
                "id", "type", "address", "address_description", "name", "ip_stack", "filters"
            ):
                # Sites are filled in when a grant set is built (connections change apart).
                model.resources[row[0]] = AccessResource(*row[:6], filters=row[6] or [], sites=())
            for cid, rid, sid in ResourceConnection.objects.filter(
                account_id=model.account_id
            ).values_list("id", "resource_id", "gateway_group_id"):
                model.connections[cid] = (rid, sid)
            model.sites = dict(
                Site.objects.filter(account_id=model.account_id).values_list("id", "name")
            )
            for pid, rid, gid, conditions, disabled_at, inserted_at in Policy.objects.filter(
                account_id=model.account_id
            ).values_list(
                "id", "resource_id", "actor_group_id", "conditions", "disabled_at", "inserted_at"
            ):
                model.policies[pid] = PolicyRow(
                    pid, rid, gid, conditions or [], disabled_at is None, _ms(inserted_at)
                )
            for mid, actor_id, group_id in ActorGroupMembership.objects.filter(
                account_id=model.account_id
            ).values_list("id", "actor_id", "group_id"):
                model.memberships[mid] = (actor_id, group_id)
        model._reset_derived()
        return model

    # ---------------------------------------------------------------- derived data

    def _reset_derived(self) -> None:
        self._actor_groups: dict[uuid.UUID, dict[uuid.UUID, uuid.UUID]] | None = None
        self._group_actors: dict[uuid.UUID, set[uuid.UUID]] | None = None
        self._resource_sites: dict[uuid.UUID, tuple[SiteRef, ...]] | None = None
        self._grantsets: dict[frozenset[uuid.UUID], GrantSet] = {}
        self._resource_views: dict[tuple[uuid.UUID, str | None], dict[str, Any] | None] = {}
        self._views: dict[tuple[Any, ...], ClientView] = {}
        self._policies_by_group: dict[uuid.UUID, list[PolicyRow]] | None = None
        self.generation = getattr(self, "generation", 0) + 1

    def _index_memberships(self) -> None:
        actor_groups: dict[uuid.UUID, dict[uuid.UUID, uuid.UUID]] = {}
        group_actors: dict[uuid.UUID, set[uuid.UUID]] = {}
        for mid, (actor_id, group_id) in self.memberships.items():
            actor_groups.setdefault(actor_id, {})[group_id] = mid
            group_actors.setdefault(group_id, set()).add(actor_id)
        self._actor_groups, self._group_actors = actor_groups, group_actors

    def actor_groups(self, actor_id: Any) -> dict[uuid.UUID, uuid.UUID]:
        """group id → membership id of the actor's memberships."""
        if self._actor_groups is None:
            self._index_memberships()
        assert self._actor_groups is not None
        key = _uuid(actor_id)
        return self._actor_groups.get(key, {}) if key is not None else {}

    def group_actors(self, group_id: Any) -> set[uuid.UUID]:
        if self._group_actors is None:
            self._index_memberships()
        assert self._group_actors is not None
        key = _uuid(group_id)
        return self._group_actors.get(key, set()) if key is not None else set()

    def resource_sites(self, resource_id: uuid.UUID) -> tuple[SiteRef, ...]:
        if self._resource_sites is None:
            by_resource: dict[uuid.UUID, list[SiteRef]] = {}
            for rid, sid in self.connections.values():
                if sid in self.sites:
                    by_resource.setdefault(rid, []).append(SiteRef(id=sid, name=self.sites[sid]))
            self._resource_sites = {
                rid: tuple(sorted(sites, key=lambda s: (s.name, str(s.id))))
                for rid, sites in by_resource.items()
            }
        return self._resource_sites.get(resource_id, ())

    def _policies_of_group(self, group_id: uuid.UUID) -> list[PolicyRow]:
        if self._policies_by_group is None:
            by_group: dict[uuid.UUID, list[PolicyRow]] = {}
            for policy in self.policies.values():
                if policy.enabled:
                    by_group.setdefault(policy.group_id, []).append(policy)
            self._policies_by_group = by_group
        return self._policies_by_group.get(group_id, [])

    def grantset(self, actor_id: Any) -> GrantSet:
        """The actor's grants (shared with every actor of the same groups)."""
        groups = frozenset(self.actor_groups(actor_id))
        found = self._grantsets.get(groups)
        if found is not None:
            return found
        policies = sorted(
            (p for g in groups for p in self._policies_of_group(g)), key=lambda p: p.order
        )
        access = ClientAccess(actor_id=None)
        conditional = time_bound = False
        for policy in policies:
            resource = self.resources.get(policy.resource_id)
            if resource is None:
                continue
            access.grants.setdefault(policy.resource_id, []).append(
                Grant(
                    policy_id=policy.id,
                    resource_id=policy.resource_id,
                    actor_group_id=policy.group_id,
                    membership_id=None,  # per actor: see authorize()
                    conditions=list(policy.conditions),
                )
            )
            if policy.conditions:
                conditional = True
                time_bound = time_bound or any(
                    isinstance(c, Mapping) and c.get("property") == TIME_PROPERTY
                    for c in policy.conditions
                )
        # Only resources connected to a site, in display order (name, then id): §5.2 rule 3.
        granted = []
        for rid in access.grants:
            sites = self.resource_sites(rid)
            if sites:
                granted.append(dataclasses.replace(self.resources[rid], sites=sites))
        granted.sort(key=lambda r: (r.name, str(r.id)))
        access.resources = {r.id: r for r in granted}
        access.grants = {rid: g for rid, g in access.grants.items() if rid in access.resources}
        found = GrantSet(access=access, conditional=conditional, time_bound=time_bound)
        self._grantsets[groups] = found
        return found

    def _resource_view(self, resource: AccessResource, version: str | None) -> dict | None:
        key = (resource.id, version)
        if key not in self._resource_views:
            adapted = adapt_resource_for_version(resource, version)
            self._resource_views[key] = (
                None if adapted is None else wire.client_resource_view(adapted)
            )
        return self._resource_views[key]

    def _build_view(self, resources: Iterable[AccessResource], version: str | None) -> ClientView:
        views = {}
        for resource in resources:
            view = self._resource_view(resource, version)
            if view is not None:
                views[view["id"]] = view
        return ClientView(resources=views)

    def client_view(
        self, grantset: GrantSet, ctx: conds.RequestContext | None, version: str | None
    ) -> ClientView:
        """§5.2: the resources some policy allows now, as the client of `version` sees them."""
        if not grantset.conditional:
            view = grantset.views.get(version)
            if view is None:
                view = grantset.views[version] = self._build_view(
                    grantset.access.resources.values(), version
                )
            return view
        assert ctx is not None
        allowed = tuple(
            rid
            for rid, resource in grantset.access.resources.items()
            if any(
                conds.evaluate(g.conditions, ctx).allowed
                for g in grantset.access.grants.get(rid, ())
            )
        )
        key = (id(grantset), version, allowed)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = self._build_view(
                (grantset.access.resources[rid] for rid in allowed), version
            )
        return view

    def without_policies(self, grantset: GrantSet, policy_ids: set[str]) -> GrantSet:
        """The grant set as if these policies were gone (not interned: rare)."""
        access = grantset.access
        grants = {
            rid: kept
            for rid, grants in access.grants.items()
            if (kept := [g for g in grants if str(g.policy_id) not in policy_ids])
        }
        return GrantSet(
            access=ClientAccess(
                actor_id=None,
                resources={rid: r for rid, r in access.resources.items() if rid in grants},
                grants=grants,
            ),
            conditional=True,  # evaluate per context, never cached on the shared object
            time_bound=grantset.time_bound,
        )

    def authorize(
        self,
        actor_id: Any,
        resource_id: Any,
        *,
        ctx: conds.RequestContext,
        token_expires_at: datetime | None,
        connectable_ids: Collection[str],
    ) -> Authorization:
        """§5.4 step 1 in memory; `connectable_ids` are the resource id strings the client was
        last told. The membership the winning policy grants through is the actor's own (the
        shared grant sets carry none)."""
        grantset = self.grantset(actor_id)
        key = _uuid(resource_id)
        if key is None or str(key) not in connectable_ids:  # a dict/set of id strings: O(1)
            return Authorization(status="not_found", resource_id=resource_id)
        auth = grantset.access.authorize(
            resource_id, ctx=ctx, token_expires_at=token_expires_at, connectable_ids=(key,)
        )
        if not auth.ok:
            return auth
        group_id = auth.actor_group_id
        membership_id = self.actor_groups(actor_id).get(group_id) if group_id else None
        if membership_id is None:  # pragma: no cover - the grant set came from the memberships
            return Authorization(status="not_found", resource_id=resource_id)
        return Authorization(
            status=auth.status,
            resource_id=auth.resource_id,
            policy_id=auth.policy_id,
            actor_group_id=auth.actor_group_id,
            membership_id=membership_id,
            condition_expires_at=auth.condition_expires_at,
            expires_at=auth.expires_at,
        )

    def granted_resource(self, actor_id: Any, resource_id: Any) -> AccessResource | None:
        key = _uuid(resource_id)
        return self.grantset(actor_id).access.resources.get(key) if key else None

    # ---------------------------------------------------------------- applying changes

    def _newer(self, table: str, row_id: Any, lsn: int) -> bool:
        key = (table, str(row_id))
        if lsn <= self.row_lsn.get(key, 0):
            return False
        self.row_lsn[key] = lsn
        return True

    def apply(self, change: Mapping[str, Any], effects: Effects) -> None:
        """Apply one change (a `firezone.changes.Change` as a dict) and note its effects."""
        table, op = change["table"], change["op"]
        old: Mapping[str, Any] = change.get("old") or {}
        new: Mapping[str, Any] = change.get("new") or {}
        image = new or old
        if table in ("flows", "gateways", "resources", "accounts", "gateway_groups"):
            effects.device_changes.append(dict(change))
        if table == "clients":
            client_id = str(image.get("id"))
            effects.clients.setdefault(client_id, []).append(dict(change))
            return
        if table not in MODEL_TABLES:
            return
        row_id = image.get("id")
        if row_id is None or not self._newer(table, row_id, int(change.get("lsn") or 0)):
            return
        deleted = op == "delete"
        if table == "accounts":
            if _uuid(row_id) != self.account_id or deleted:
                return
            if new.get("config") != self.config:
                self.config = new.get("config") or {}
                effects.config_changed = True
            self.slug = new.get("slug") or ""
            return
        # Everything below can change access: the derived caches are rebuilt lazily.
        if table == "resource_connections":
            rid, sid = _uuid(image.get("resource_id")), _uuid(image.get("gateway_group_id"))
            if deleted:
                self.connections.pop(row_id, None)
            elif rid is not None and sid is not None:
                self.connections[row_id] = (rid, sid)
            if rid is not None:
                self._touch_resources({rid}, effects)
            return
        key = _uuid(row_id)
        if key is None:
            return
        if table == "resources":
            if deleted:
                self.resources.pop(key, None)
            else:
                self.resources[key] = AccessResource(
                    id=key,
                    type=new.get("type") or "",
                    address=new.get("address"),
                    address_description=new.get("address_description"),
                    name=new.get("name") or "",
                    ip_stack=new.get("ip_stack"),
                    filters=new.get("filters") or [],
                    sites=(),
                )
            self._touch_resources({key}, effects)
        elif table == "gateway_groups":
            if deleted:
                self.sites.pop(key, None)
            else:
                self.sites[key] = new.get("name") or ""
            self._touch_resources(
                {rid for rid, sid in self.connections.values() if sid == key}, effects
            )
        elif table == "policies":
            before = self.policies.get(key)
            rid, gid = _uuid(new.get("resource_id")), _uuid(new.get("actor_group_id"))
            if deleted or rid is None or gid is None:  # both columns are NOT NULL
                self.policies.pop(key, None)
            else:
                self.policies[key] = PolicyRow(
                    key,
                    rid,
                    gid,
                    new.get("conditions") or [],
                    new.get("disabled_at") is None,
                    _ms(new.get("inserted_at")),
                )
            groups = {
                g
                for g in (
                    before.group_id if before else None,
                    _uuid(old.get("actor_group_id")),
                    _uuid(new.get("actor_group_id")),
                )
                if g is not None
            }
            for group in groups:
                effects.actors |= self.group_actors(group)
            if (
                op == "update"
                and old.get("disabled_at") == new.get("disabled_at")
                and any(old.get(f) != new.get(f) for f in POLICY_GRANT_FIELDS)
            ):
                effects.broken_policies.add(str(key))
            self._invalidate()
        elif table == "actor_group_memberships":
            if deleted:
                self.memberships.pop(key, None)
            else:
                member, group_id = _uuid(new.get("actor_id")), _uuid(new.get("group_id"))
                if member is not None and group_id is not None:
                    self.memberships[key] = (member, group_id)
            for actor_id in (_uuid(old.get("actor_id")), _uuid(new.get("actor_id"))):
                if actor_id is not None:
                    effects.actors.add(actor_id)
            self._invalidate()

    def _touch_resources(self, resource_ids: set[uuid.UUID], effects: Effects) -> None:
        groups = {p.group_id for p in self.policies.values() if p.resource_id in resource_ids}
        for group in groups:
            effects.actors |= self.group_actors(group)
        self._invalidate()

    def _invalidate(self) -> None:
        actor_groups, group_actors = self._actor_groups, self._group_actors
        self._reset_derived()
        # Membership indexes are rebuilt only when memberships change (the costly part of a
        # 10,000-member account); callers that changed memberships reset them explicitly.
        self._actor_groups, self._group_actors = actor_groups, group_actors

    def apply_all(self, changes: Iterable[Mapping[str, Any]]) -> Effects:
        effects = Effects()
        memberships_changed = False
        for change in changes:
            if change.get("table") == "actor_group_memberships":
                # Effects need the index as it was; rebuild it after the batch.
                memberships_changed = True
            self.apply(change, effects)
        if memberships_changed:
            self._actor_groups = self._group_actors = None
            # Actors newly in a group with policies are found through the rebuilt index too.
        return effects
