"""What a client may reach, and through which gateway (protocol.md §5.2-§5.5).

Synchronous (the sockets call it through `database_sync_to_async`). The hot path — computing a
client's connectable resources at every join, every 60 s and on many change events — is split in
two so the socket can cache the database part:

* `client_access_load(client)` reads everything with two queries, whatever the number of
  policies and resources: the actor's enabled policies (with the membership that grants each),
  then the granted resources that are connected to a site, with those sites;
* `ClientAccess.connectable(...)` and `ClientAccess.authorize(...)` are pure: policy conditions
  (`resources.conditions`) and version adaptation (`resources.versions`) in memory.

Gateway choice (§5.4 steps 2-3) and the re-authorisation of a deleted flow (§5.5) complete the
module. Flow rows for `create_flow` are written by `resources.services.flows.flow_authorize`
with the `PolicyDecision` an `Authorization` carries.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import ActorGroupMembership, Token
from firezone import changes
from firezone.versions import release_key, version_key
from gateways.models import Client, Gateway
from gateways.selectors.gateways import gateway_compatible, gateways_pick_nearest
from resources import conditions as conds
from resources.models import Flow, Policy, ResourceConnection
from resources.selectors.policies import (
    policies_for_client_resource,
    policies_in_trial_order,
    policy_order,
)
from resources.services.flows import MAX_FLOW_LIFETIME, PolicyDecision, client_request_context
from resources.versions import adapt_resource_for_version

# `authorize_flow` / `flow_authorized` exist from 1.4.0 on; the plain compatibility window would
# also admit 1.3.x gateways for 1.4.x clients (protocol.md §9 item 9).
FLOW_PROTOCOL_SINCE: Final = release_key("1.4.0")

Status = Literal["ok", "not_found", "forbidden"]


@dataclass(frozen=True, slots=True)
class SiteRef:
    id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class AccessResource:
    """A granted resource with its connected sites (never empty), ready for `gateways.wire`.

    Frozen: version adaptation returns a copy (`dataclasses.replace`), never mutates it.
    """

    id: uuid.UUID
    type: str
    address: str | None
    address_description: str | None
    name: str
    ip_stack: str | None
    filters: list[dict[str, Any]]
    sites: tuple[SiteRef, ...]

    @property
    def site_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(site.id for site in self.sites)


@dataclass(frozen=True, slots=True)
class Grant:
    """An enabled policy of one of the actor's groups, and the membership it grants through."""

    policy_id: uuid.UUID
    resource_id: uuid.UUID
    actor_group_id: uuid.UUID
    membership_id: uuid.UUID | None  # None in the hub's shared grant sets (one per group set)
    conditions: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Authorization:
    """The outcome of §5.4 step 1."""

    status: Status
    resource_id: Any
    policy_id: uuid.UUID | None = None
    actor_group_id: uuid.UUID | None = None
    membership_id: uuid.UUID | None = None
    # The policy's own expiry (time conditions; None = none) and the flow's (capped by the token).
    condition_expires_at: datetime | None = None
    expires_at: datetime | None = None
    violated_properties: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def decision(self) -> PolicyDecision:
        """What `flow_authorize(decision=...)` needs to insert the flow without re-evaluating."""
        assert self.ok, "only a granted authorisation carries a decision"
        return PolicyDecision(policy_id=self.policy_id, expires_at=self.condition_expires_at)


@dataclass(slots=True)
class ClientAccess:
    """A client actor's grants and granted resources, as loaded at one point in time.

    `resources` holds the resources as stored (not adapted to any version), in display order;
    only resources connected to at least one site are kept (§5.2 rule 3).
    """

    actor_id: Any
    resources: dict[uuid.UUID, AccessResource] = field(default_factory=dict)
    grants: dict[uuid.UUID, list[Grant]] = field(default_factory=dict)

    def connectable(self, ctx: conds.RequestContext, version: str | None) -> list[AccessResource]:
        """§5.2: resources some policy allows right now (conditions AND-ed, policies OR-ed),
        adapted to the client's `version` (dropped if they cannot be), each listed once."""
        result: list[AccessResource] = []
        for resource_id, resource in self.resources.items():
            if not any(
                conds.evaluate(grant.conditions, ctx).allowed
                for grant in self.grants.get(resource_id, ())
            ):
                continue
            adapted = adapt_resource_for_version(resource, version)
            if adapted is not None:
                result.append(adapted)
        return result

    def authorize(
        self,
        resource_id: Any,
        *,
        ctx: conds.RequestContext,
        token_expires_at: datetime | None,
        connectable_ids: Collection[Any],
    ) -> Authorization:
        """§5.4 step 1 for `create_flow` and the legacy requests.

        `connectable_ids` is the set the client was last told about (not recomputed here, so a
        time window that just closed reads `forbidden`, not `not_found`). The winning policy is
        the satisfied one with the latest expiry; the flow's expiry is the earlier of it and the
        token's, or now + MAX_FLOW_LIFETIME when neither expires (§9 item 12).
        """
        key = _uuid_or_none(resource_id)
        if key is None or key not in {_uuid_or_none(i) for i in connectable_ids}:
            return Authorization(status="not_found", resource_id=resource_id)
        grants = self.grants.get(key, [])
        if not grants:  # granted when the set was computed, membership/policy gone since
            return Authorization(status="not_found", resource_id=resource_id)
        grant, result = conds.evaluate_policies(((g, g.conditions) for g in grants), ctx)
        if grant is None:
            return Authorization(
                status="forbidden",
                resource_id=resource_id,
                violated_properties=result.violated_properties,
            )
        expires_at = conds.authorization_expiry(result.expires_at, token_expires_at)
        return Authorization(
            status="ok",
            resource_id=resource_id,
            policy_id=grant.policy_id,
            actor_group_id=grant.actor_group_id,
            membership_id=grant.membership_id,
            condition_expires_at=result.expires_at,
            expires_at=expires_at if expires_at is not None else ctx.now + MAX_FLOW_LIFETIME,
        )


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- loading ------------------------------------------------------------------------------------


def client_access_load(client: Client) -> ClientAccess:
    """Two queries, independent of the number of policies/resources (see module docstring)."""
    return actor_access_load(account_id=client.account_id, actor_id=client.actor_id)


def actor_access_load(*, account_id: Any, actor_id: Any) -> ClientAccess:
    """`client_access_load` for an actor (whichever client it uses)."""
    grant_rows = sorted(
        Policy.objects.filter(
            account_id=account_id,
            disabled_at__isnull=True,
            actor_group__memberships__actor_id=actor_id,
        )
        # The membership column reuses the join the filter made (one row per policy).
        .values_list(
            "id",
            "resource_id",
            "actor_group_id",
            "actor_group__memberships__id",
            "conditions",
            "inserted_at",
        ),
        key=lambda row: policy_order(row[5], row[0]),
    )
    access = ClientAccess(actor_id=actor_id)
    for policy_id, resource_id, group_id, membership_id, policy_conditions, _ in grant_rows:
        access.grants.setdefault(resource_id, []).append(
            Grant(
                policy_id=policy_id,
                resource_id=resource_id,
                actor_group_id=group_id,
                membership_id=membership_id,
                conditions=policy_conditions or [],
            )
        )
    if not access.grants:
        return access

    # Only connected resources appear here, which is exactly §5.2 rule 3.
    connection_rows = (
        ResourceConnection.objects.filter(
            account_id=account_id, resource_id__in=list(access.grants)
        )
        .order_by("resource__name", "resource_id", "gateway_group__name", "gateway_group_id")
        .values_list(
            "resource_id",
            "resource__type",
            "resource__address",
            "resource__address_description",
            "resource__name",
            "resource__ip_stack",
            "resource__filters",
            "gateway_group_id",
            "gateway_group__name",
        )
    )
    rows_by_resource: dict[uuid.UUID, tuple[tuple[Any, ...], list[SiteRef]]] = {}
    for row in connection_rows:
        entry = rows_by_resource.setdefault(row[0], (row, []))
        entry[1].append(SiteRef(id=row[7], name=row[8]))
    # Display order by code point, not by the database's collation (en_US would put "alpha"
    # before "Beta"): the same order as the access hub's (gateways.hub.model), everywhere.
    ordered = sorted(rows_by_resource.items(), key=lambda item: (item[1][0][4], str(item[0])))
    for resource_id, (row, sites) in ordered:
        sites.sort(key=lambda site: (site.name, str(site.id)))
        access.resources[resource_id] = AccessResource(
            id=resource_id,
            type=row[1],
            address=row[2],
            address_description=row[3],
            name=row[4],
            ip_stack=row[5],
            filters=row[6] or [],
            sites=tuple(sites),
        )
    return access


def connectable_resources(
    client: Client,
    *,
    version: str | None = None,
    request_context: conds.RequestContext | None = None,
) -> list[AccessResource]:
    """§5.2 for one client: load + evaluate. `version` defaults to the client's last seen one,
    `request_context` to its last-seen connection (one more query if its identity is not
    loaded)."""
    ctx = request_context or client_request_context(client)
    return client_access_load(client).connectable(
        ctx, version if version is not None else client.last_seen_version
    )


# --- gateway choice -----------------------------------------------------------------------------


def gateway_eligible(
    gateway: Gateway, *, resource: AccessResource, client_version: str | None, flow_protocol: bool
) -> bool:
    """§5.4 step 2 for one gateway (already known online and in one of the resource's sites):
    version-compatible with the client, able to serve the resource at its own version, and —
    for `create_flow` (`flow_protocol=True`) — at least 1.4.0 (§9 item 9). The legacy paths use
    the plain window."""
    if not gateway_compatible(gateway.last_seen_version, client_version):
        return False
    if flow_protocol:
        key = version_key(gateway.last_seen_version)
        if key is None or key < FLOW_PROTOCOL_SINCE:
            return False
    return adapt_resource_for_version(resource, gateway.last_seen_version) is not None


_CANDIDATES_SQL = (
    f"SELECT * FROM {Gateway._meta.db_table} "  # noqa: S608 (names from model metadata)
    f"WHERE {Gateway._meta.get_field('account').column} = %s AND id = ANY(%s) "
    f"AND {Gateway._meta.get_field('group').column} = ANY(%s) ORDER BY id"
)


def gateway_candidates(
    *,
    account_id: Any,
    resource: AccessResource,
    client_version: str | None,
    online_gateway_ids: Iterable[Any],
    flow_protocol: bool = True,
) -> list[Gateway]:
    """§5.4 step 2: online gateways in the resource's sites that may serve this client. One
    query. `resource` is the stored (unadapted) resource; `online_gateway_ids` comes from
    presence."""
    online = {i for i in (_uuid_or_none(x) for x in online_gateway_ids) if i is not None}
    if not online or not resource.sites:
        return []
    # Raw SQL: compiling the equivalent queryset cost more than running it, on every flow.
    gateways = Gateway.objects.raw(
        _CANDIDATES_SQL, [account_id, list(online), list(resource.site_ids)]
    )
    return [
        g
        for g in gateways
        if gateway_eligible(
            g, resource=resource, client_version=client_version, flow_protocol=flow_protocol
        )
    ]


def gateway_pick(
    candidates: Iterable[Gateway],
    *,
    client_id: Any,
    resource_id: Any,
    connected_gateway_ids: Iterable[Any] = (),
    lat: float | None = None,
    lon: float | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Gateway | None:
    """§5.4 step 3, with the §9 item 23 decision:

    1. if some candidates are in `connected_gateway_ids`, keep only those;
    2. among several of them, the gateway of the client's latest unexpired flow for this
       resource wins (connlib asserts a routed resource never silently changes gateway; one
       query, only in this case);
    3. otherwise the nearest location, then the newest SemVer, then random
       (`gateways_pick_nearest`).
    """
    pool = list(candidates)
    connected = {i for i in (_uuid_or_none(x) for x in connected_gateway_ids) if i is not None}
    preferred = [g for g in pool if g.pk in connected]
    if preferred:
        pool = preferred
    if len(preferred) > 1:
        latest_gateway_id = (
            Flow.objects.filter(
                client_id=client_id,
                resource_id=resource_id,
                gateway_id__in=[g.pk for g in preferred],
                expires_at__gt=now or timezone.now(),
            )
            .order_by("-inserted_at", "-id")
            .values_list("gateway_id", flat=True)
            .first()
        )
        for gateway in preferred:
            if gateway.pk == latest_gateway_id:
                return gateway
    return gateways_pick_nearest(pool, lat, lon, rng=rng)


def gateway_choose(
    *,
    account_id: Any,
    client_id: Any,
    resource: AccessResource,
    client_version: str | None,
    online_gateway_ids: Iterable[Any],
    connected_gateway_ids: Iterable[Any] = (),
    lat: float | None = None,
    lon: float | None = None,
    flow_protocol: bool = True,
    rng: random.Random | None = None,
) -> Gateway | None:
    """Steps 2 and 3 together; None means `offline`."""
    candidates = gateway_candidates(
        account_id=account_id,
        resource=resource,
        client_version=client_version,
        online_gateway_ids=online_gateway_ids,
        flow_protocol=flow_protocol,
    )
    return gateway_pick(
        candidates,
        client_id=client_id,
        resource_id=resource.id,
        connected_gateway_ids=connected_gateway_ids,
        lat=lat,
        lon=lon,
        rng=rng,
    )


def legacy_gateway_check(
    *,
    account_id: Any,
    gateway_id: Any,
    resource: AccessResource,
    online_gateway_ids: Collection[Any],
) -> tuple[Gateway | None, Literal["not_found", "offline"] | None]:
    """Legacy `request_connection` / `reuse_connection` (§3.1.9): the named gateway must exist
    in the account (`not_found`), be in one of the resource's sites (`not_found`) and be online
    (`offline`). Returns `(gateway, None)` or `(None, reason)`."""
    key = _uuid_or_none(gateway_id)
    gateway = (
        Gateway.objects.filter(account_id=account_id, pk=key).first() if key is not None else None
    )
    if gateway is None or gateway.group_id not in resource.site_ids:
        return None, "not_found"
    if gateway.pk not in {_uuid_or_none(i) for i in online_gateway_ids}:
        return None, "offline"
    return gateway, None


# --- §5.5 re-authorisation ----------------------------------------------------------------------


def _image_value(image: Flow | Mapping[str, Any], name: str) -> Any:
    if isinstance(image, Flow):
        return getattr(image, name)
    return image.get(name)


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_datetime(str(value))


@transaction.atomic
def flow_reauthorize(
    deleted_flow: Flow | Mapping[str, Any], *, now: datetime | None = None
) -> Flow | None:
    """System path (§5.5): the last flow of a (client, resource) pair on a gateway was deleted;
    insert a replacement if another policy still allows it, else None (→ `reject_access`).

    `deleted_flow` is the deleted row's change image (`Change.old`) or the instance. Requires:
    the client and the gateway still exist, the flow's token exists and has not expired, an
    enabled policy of the actor's groups grants the resource through the gateway's site, and one
    is satisfied now (the client's last-seen connection). The new flow keeps token, client,
    gateway, resource and gateway IP, takes the winning policy and membership, and ends at
    min(policy expiry, deleted flow's expiry); when that is not in the future the answer is None
    (§9 item 13: `reject_access` rather than an expiry update in the past).
    """
    now = now or timezone.now()
    account_id = _uuid_or_none(_image_value(deleted_flow, "account_id"))
    client_id = _uuid_or_none(_image_value(deleted_flow, "client_id"))
    gateway_id = _uuid_or_none(_image_value(deleted_flow, "gateway_id"))
    resource_id = _uuid_or_none(_image_value(deleted_flow, "resource_id"))
    token_id = _uuid_or_none(_image_value(deleted_flow, "token_id"))
    old_expires_at = _as_datetime(_image_value(deleted_flow, "expires_at"))
    if old_expires_at is None or old_expires_at <= now:
        return None
    if (
        account_id is None
        or client_id is None
        or gateway_id is None
        or resource_id is None
        or token_id is None
    ):
        return None
    client = (
        Client.objects.filter(account_id=account_id, pk=client_id)
        .select_related("identity")
        .first()
    )
    gateway = Gateway.objects.filter(account_id=account_id, pk=gateway_id).first()
    token_valid = (
        Token.objects.filter(pk=token_id)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exists()
    )
    if client is None or gateway is None or not token_valid:
        return None

    candidates = policies_for_client_resource(
        account_id=account_id,
        actor_id=client.actor_id,
        resource_id=resource_id,
        site_id=gateway.group_id,
    )
    ctx = client_request_context(client, now=now)
    policy, result = conds.evaluate_policies(
        ((p, p.conditions) for p in policies_in_trial_order(candidates)), ctx
    )
    if policy is None:
        return None
    expires_at = conds.min_expiry(result.expires_at, old_expires_at)
    if expires_at is None or expires_at <= now:
        return None
    membership = ActorGroupMembership.objects.filter(
        account_id=account_id, actor_id=client.actor_id, group_id=policy.actor_group_id
    ).first()
    if membership is None:  # pragma: no cover - the policy query joined through it
        return None

    flow = Flow.objects.create(
        account_id=account_id,
        policy=policy,
        client=client,
        gateway=gateway,
        resource_id=resource_id,
        token_id=token_id,
        actor_group_membership=membership,
        client_remote_ip=client.last_seen_remote_ip,
        client_user_agent=client.last_seen_user_agent[:255],
        gateway_remote_ip=_image_value(deleted_flow, "gateway_remote_ip")
        or gateway.last_seen_remote_ip,
        expires_at=expires_at,
    )
    # Like every flow insert: logged, not broadcast (the gateway channel pushes the update).
    changes.record(op="insert", table="flows", account_id=account_id, new=flow, publish=False)
    return flow
