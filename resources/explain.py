"""The access explainer: "why can't this user reach that resource?" (issue 18). A read.

The verdict is not re-implemented here: it comes from the code that authorises `create_flow`
(protocol.md §5.2-§5.4). The actor's grants are loaded by `resources.access.actor_access_load`
(the database twin of the access hub's grant sets, same policy order), the resource must be in
`ClientAccess.connectable(...)` (connected to a site, adaptable to the client's version, some
policy satisfied) and `ClientAccess.authorize(...)` picks the policy and the expiry
(`conditions.evaluate_policies` → `longest_conforming`, `authorization_expiry`, the
`MAX_FLOW_LIFETIME` cap). The per-condition lines come from `conditions.check_conditions`, the
evaluator `evaluate` itself folds. The gateway part runs `gateway_candidates` + `gateway_pick`
(the same steps as `gateway_choose`) against presence, with a seeded random so the explanation
names one gateway deterministically where `create_flow` picks at random among equals.
resources/tests/test_explain_property.py proves the verdict equal to the hub's for random
accounts and contexts.

Defaults ("now, from the client's last seen context"): the given client, or the actor's most
recently seen one; its last remote IP, location, verified flag, version and the provider of its
identity. Explicit arguments override each of them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from django.db.models import Model, Q
from django.utils import timezone

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Account, Actor, ActorGroup, ActorGroupMembership, AuthProvider, Token
from firezone.errors import NotFound
from firezone.lookup import get_or_not_found
from gateways import presence
from gateways.models import Client, Gateway
from resources import access as ra
from resources import conditions as conds
from resources.models import Policy, Resource, ResourceConnection
from resources.selectors.policies import policies_in_trial_order
from resources.time_windows import (
    ALL_DAY,
    DAYS_OF_WEEK,
    ConditionValueError,
    parse_day_of_week_time_ranges,
)
from resources.versions import adapt_resource_for_version

DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

R_NO_POLICY: Final = "no policy grants this resource"
R_NOT_MEMBER: Final = "not in any group that a policy of this resource names"
R_ALL_DISABLED: Final = "every policy of this resource is disabled"
R_MEMBER_DISABLED: Final = "every policy of this resource for the actor's groups is disabled"
R_NO_SITE: Final = "the resource is not connected to any site"
R_ACTOR_DISABLED: Final = "the actor is disabled"
R_ACCOUNT_DISABLED: Final = "the account is disabled"


@dataclass(frozen=True)
class ConditionCheck:
    """One condition of a policy, as checked against the context."""

    property: str
    operator: str
    values: list[str]
    passed: bool
    evaluated_against: str | None
    reason: str | None
    expires_at: datetime | None = None  # time windows: when the matching window ends


@dataclass(frozen=True)
class PolicyCheck:
    policy_id: uuid.UUID
    description: str | None
    group_id: uuid.UUID
    group_name: str
    disabled: bool
    member: bool
    membership: str | None  # "Everyone", "added manually", "synced from <provider name>"
    conditions: list[ConditionCheck]
    grants: bool  # enabled, a member, every condition met
    expires_at: datetime | None  # when its conditions stop holding (None = they do not expire)


@dataclass(frozen=True)
class SiteCheck:
    site_id: uuid.UUID
    site_name: str
    online_gateways: int
    compatible_gateways: int
    chosen_gateway_id: uuid.UUID | None
    chosen_gateway_name: str | None


@dataclass(frozen=True)
class AccessContext:
    """The inputs actually used (defaults resolved)."""

    at: datetime
    client_id: uuid.UUID | None
    location: str | None
    remote_ip: str | None
    provider_id: uuid.UUID | None
    verified: bool
    version: str | None
    client_name: str | None = None
    provider_name: str | None = None
    token_expires_at: datetime | None = None


@dataclass(frozen=True)
class Explanation:
    allowed: bool  # authorised by a policy AND a gateway would be chosen
    granting_policy: PolicyCheck | None
    expires_at: datetime | None  # the flow's expiry create_flow would set
    policies: list[PolicyCheck]
    sites: list[SiteCheck]
    reason: str | None  # the shortest honest reason when denied
    context: AccessContext
    authorized: bool = False  # a policy grants it (create_flow's step 1), gateways aside
    resource_id: uuid.UUID | None = None
    resource_name: str = ""
    actor_id: uuid.UUID | None = None
    actor_name: str = ""
    chosen_gateway_id: uuid.UUID | None = None
    chosen_gateway_name: str | None = None


# --- condition texts ----------------------------------------------------------------------------


def _join(values: Iterable[str]) -> str:
    return ", ".join(values) or "(none)"


def format_time_windows(values: Iterable[str]) -> str:
    """`M/09:00-17:00/Europe/Berlin` … `F/09:00-17:00/Europe/Berlin` read as "Mon to Fri
    09:00 to 17:00 Europe/Berlin" (written with en dashes): consecutive days with the same
    ranges are joined."""
    by_zone: dict[str, dict[int, list[str]]] = {}
    bad: list[str] = []
    for value in values:
        try:
            parsed = parse_day_of_week_time_ranges(value)
        except ConditionValueError:
            bad.append(value)
            continue
        texts = [
            "all day" if (start, end) == ALL_DAY else f"{start:%H:%M}–{end:%H:%M}"
            for start, end in parsed.ranges
        ]
        if texts:
            by_zone.setdefault(parsed.timezone, {}).setdefault(
                DAYS_OF_WEEK.index(parsed.day), []
            ).extend(texts)
    parts: list[str] = []
    for zone, days in by_zone.items():
        runs: list[tuple[int, int, str]] = []
        for day in sorted(days):
            text = ", ".join(dict.fromkeys(days[day]))
            if runs and runs[-1][1] == day - 1 and runs[-1][2] == text:
                runs[-1] = (runs[-1][0], day, text)
            else:
                runs.append((day, day, text))
        for first, last, text in runs:
            span = DAY_NAMES[first] if first == last else f"{DAY_NAMES[first]}–{DAY_NAMES[last]}"
            parts.append(f"{span} {text} {zone}")
    if bad:
        parts.append("invalid: " + ", ".join(bad))
    return "; ".join(parts) or "no time at all"


def _local_time(at: datetime, values: Iterable[str]) -> str:
    """The instant as the policy's first time zone sees it: "Tue 18:30 Europe/Berlin"."""
    zone = "UTC"
    for value in values:
        try:
            zone = parse_day_of_week_time_ranges(value).timezone
            break
        except ConditionValueError:
            continue
    local = at.astimezone(ZoneInfo(zone))
    return f"{DAY_NAMES[local.weekday()]} {local:%H:%M} {zone}"


def _condition_check(
    outcome: conds.ConditionOutcome,
    ctx: conds.RequestContext,
    provider_names: Mapping[str, str],
) -> ConditionCheck:
    condition = outcome.condition
    prop, operator, values = condition.property, condition.operator, list(condition.values)
    inside = operator in (conds.Operator.IS_IN, conds.Operator.IS_IN_CIDR)
    verb = "requires one of" if inside else "excludes"
    against: str | None
    reason: str
    if operator not in conds.OPERATORS_BY_PROPERTY.get(prop, ()):
        against, reason = None, f"unsupported condition {prop} {operator} (never met)"
    elif prop == conds.Property.REMOTE_IP_LOCATION_REGION:
        against = ctx.remote_ip_location_region or None
        where = f"connecting from {against}" if against else "the client's location is unknown"
        reason = f"{where}, the policy {verb} {_join(v.upper() for v in values)}"
    elif prop == conds.Property.REMOTE_IP:
        against = str(ctx.remote_ip) if ctx.remote_ip is not None else None
        where = f"connecting from {against}" if against else "the client's address is unknown"
        reason = f"{where}, the policy {verb} {_join(values)}"
    elif prop == conds.Property.PROVIDER_ID:
        provider = str(ctx.provider_id) if ctx.provider_id is not None else None
        against = provider_names.get(provider, provider) if provider else None
        names = _join(provider_names.get(v, v) for v in values)
        where = f"signed in with {against}" if against else "not signed in through a provider"
        reason = f"{where}, the policy {verb} {names}"
    elif prop == conds.Property.CLIENT_VERIFIED:
        against = "verified" if ctx.client_verified else "not verified"
        reason = "the client is not verified, the policy requires a verified client"
    else:  # current_utc_datetime
        against = _local_time(ctx.now, values)
        reason = f"outside the time window {format_time_windows(values)}"
    if outcome.skipped:
        reason = f"{reason} (an earlier condition on this property already failed)"
    return ConditionCheck(
        property=prop,
        operator=operator,
        values=values,
        passed=outcome.passed,
        evaluated_against=against,
        reason=None if outcome.passed else reason,
        expires_at=outcome.expires_at,
    )


# --- the explainer ------------------------------------------------------------------------------


def _pk(value: Model | Any) -> Any:
    return value.pk if isinstance(value, Model) else value


def _membership_text(group: ActorGroup) -> str:
    if group.type == ActorGroup.Type.MANAGED:
        return "Everyone"
    if group.provider_id is not None and group.provider is not None:
        return f"synced from {group.provider.name}"
    return "added manually"


def _session_expiry(client: Client | None) -> datetime | None:
    """The expiry of the client's newest sign-in (client token); None = no expiry / unknown."""
    if client is None:
        return None
    tokens = Token.objects.filter(
        account_id=client.account_id, type=Token.Type.CLIENT, actor_id=client.actor_id
    )
    if client.identity_id is not None:
        tokens = tokens.filter(identity_id=client.identity_id)
    return tokens.order_by("-inserted_at", "-id").values_list("expires_at", flat=True).first()


def _resolve_client(account_id: Any, actor: Actor, client: Client | Any | None) -> Client | None:
    clients = Client.objects.filter(account_id=account_id, actor_id=actor.pk).select_related(
        "identity__provider"
    )
    if client is not None:
        return get_or_not_found(clients, client)
    return clients.order_by("-last_seen_at", "-id").first()


def access_explain(
    *,
    account: Account | Any,
    actor: Actor | Any,
    resource: Resource | Any,
    client: Client | Any | None = None,
    at: datetime | None = None,
    location: str | None = None,
    remote_ip: str | None = None,
    provider_id: uuid.UUID | str | None = None,
    verified: bool | None = None,
    version: str | None = None,
    online_gateway_ids: Iterable[Any] | None = None,
) -> Explanation:
    """Why `actor` can or cannot reach `resource` (see the module docstring). The actor, the
    resource and the client must be the account's (the client the actor's): NotFound otherwise.
    `online_gateway_ids` defaults to presence (Redis)."""
    account_row = get_or_not_found(Account, account)
    account_id = account_row.pk
    actor_row = get_or_not_found(Actor, actor, account_id=account_id)
    resource_row = get_or_not_found(Resource, resource, account_id=account_id)
    client_row = _resolve_client(account_id, actor_row, client)

    identity = client_row.identity if client_row is not None else None
    if provider_id is None and identity is not None:
        provider_id = identity.provider_id
    provider_key: uuid.UUID | None = None
    if provider_id is not None:
        try:
            provider_key = uuid.UUID(str(provider_id))
        except ValueError:
            raise NotFound() from None
        # An explicit provider must be the account's (the client's own identity always is).
        if not AuthProvider.objects.filter(account_id=account_id, pk=provider_key).exists():
            raise NotFound()
    ctx = conds.RequestContext(
        now=at or timezone.now(),
        remote_ip=remote_ip or (client_row.last_seen_remote_ip if client_row else None),
        remote_ip_location_region=location
        or (client_row.last_seen_remote_ip_location_region if client_row else None),
        provider_id=provider_key,
        client_verified=verified
        if verified is not None
        else (client_row is not None and client_row.verified_at is not None),
    )
    client_version = version or (client_row.last_seen_version if client_row else None)
    token_expires_at = _session_expiry(client_row)

    # The policies of the resource (all of them, to explain), with the actor's groups.
    policies = policies_in_trial_order(
        Policy.objects.filter(account_id=account_id, resource_id=resource_row.pk).select_related(
            "actor_group__provider"
        )
    )
    member_groups = set(
        ActorGroupMembership.objects.filter(
            account_id=account_id,
            actor_id=actor_row.pk,
            group_id__in={p.actor_group_id for p in policies},
        ).values_list("group_id", flat=True)
    )
    provider_ids = {
        v
        for p in policies
        for c in conds.parse_conditions(p.conditions)
        if c.property == conds.Property.PROVIDER_ID
        for v in c.values
    }
    if provider_key is not None:
        provider_ids.add(str(provider_key))
    provider_names = {
        str(pid): name
        for pid, name in AuthProvider.objects.filter(
            account_id=account_id, pk__in=_valid_uuids(provider_ids)
        ).values_list("id", "name")
    }

    checks: list[PolicyCheck] = []
    for policy in policies:
        member = policy.actor_group_id in member_groups
        outcomes = conds.check_conditions(policy.conditions, ctx)
        result = conds.fold_outcomes(outcomes)
        disabled = policy.disabled_at is not None
        checks.append(
            PolicyCheck(
                policy_id=policy.pk,
                description=policy.description,
                group_id=policy.actor_group_id,
                group_name=policy.actor_group.name,
                disabled=disabled,
                member=member,
                membership=_membership_text(policy.actor_group) if member else None,
                conditions=[_condition_check(o, ctx, provider_names) for o in outcomes],
                grants=member and not disabled and result.allowed,
                expires_at=result.expires_at if result.allowed else None,
            )
        )

    # The verdict: create_flow's own steps (§5.2 connectable set, §5.4 step 1).
    access = ra.actor_access_load(account_id=account_id, actor_id=actor_row.pk)
    connectable = [r.id for r in access.connectable(ctx, client_version)]
    auth = access.authorize(
        resource_row.pk, ctx=ctx, token_expires_at=token_expires_at, connectable_ids=connectable
    )

    # The gateway part (§5.4 steps 2-3).
    stored = access.resources.get(resource_row.pk) or _access_resource(resource_row)
    online = (
        {str(g) for g in online_gateway_ids}
        if online_gateway_ids is not None
        else set(presence.list_presences_sync(presence.account_gateways_topic(account_id)))
    )
    candidates = ra.gateway_candidates(
        account_id=account_id,
        resource=stored,
        client_version=client_version,
        online_gateway_ids=online,
        flow_protocol=True,
    )
    chosen = ra.gateway_pick(
        sorted(candidates, key=lambda g: str(g.pk)),
        client_id=client_row.pk if client_row else None,
        resource_id=resource_row.pk,
        lat=client_row.last_seen_remote_ip_location_lat if client_row else None,
        lon=client_row.last_seen_remote_ip_location_lon if client_row else None,
        now=ctx.now,
        # Deterministic: the same answer on every call; create_flow picks among equals at random.
        rng=random.Random(f"{client_row.pk if client_row else ''}:{resource_row.pk}"),
    )
    site_checks = _site_checks(account_id, stored, online, candidates, chosen)

    granting = next((c for c in checks if auth.ok and c.policy_id == auth.policy_id), None)
    allowed = auth.ok and chosen is not None
    reason = None
    if not allowed:
        reason = _reason(
            account_row=account_row,
            actor_row=actor_row,
            resource=stored,
            checks=checks,
            auth=auth,
            version=client_version,
            sites=site_checks,
        )
    elif account_row.disabled_at is not None or actor_row.disabled_at is not None:
        allowed = False
        reason = R_ACCOUNT_DISABLED if account_row.disabled_at is not None else R_ACTOR_DISABLED
    elif token_expires_at is not None and token_expires_at <= ctx.now:
        # A device connects only with an unexpired token: the client must sign in again.
        allowed = False
        reason = f"the client's session expired at {_when(token_expires_at)}; sign in again"
    return Explanation(
        allowed=allowed,
        granting_policy=granting,
        expires_at=auth.expires_at if auth.ok else None,
        policies=checks,
        sites=site_checks,
        reason=reason,
        context=AccessContext(
            at=ctx.now,
            client_id=client_row.pk if client_row else None,
            location=ctx.remote_ip_location_region,
            remote_ip=str(ctx.remote_ip) if ctx.remote_ip is not None else None,
            provider_id=provider_key,
            verified=ctx.client_verified,
            version=client_version,
            client_name=client_row.name if client_row else None,
            provider_name=provider_names.get(str(provider_key)) if provider_key else None,
            token_expires_at=token_expires_at,
        ),
        authorized=auth.ok,
        resource_id=resource_row.pk,
        resource_name=resource_row.name,
        actor_id=actor_row.pk,
        actor_name=actor_row.name,
        chosen_gateway_id=chosen.pk if chosen else None,
        chosen_gateway_name=chosen.name if chosen else None,
    )


def access_explain_for(subject: Subject, **kwargs: Any) -> Explanation:
    """`access_explain` in the subject's account, for admins (policy managers): the portal's
    "Check access", the REST API and anything else acting for a person."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    return access_explain(account=subject.account_id, **kwargs)


# --- for people: the command's lookup and text -------------------------------------------------


class Ambiguous(NotFound):
    """A name or email that matches several rows: the caller must say which (by id)."""

    def __init__(self, what: str, matches: Iterable[Any]) -> None:
        super().__init__()
        self.what = what
        self.matches = [str(m) for m in matches]


def _one(what: str, rows: list[Any]) -> Any:
    if not rows:
        raise NotFound()
    if len(rows) > 1:
        raise Ambiguous(what, (row.pk for row in rows))
    return rows[0]


def explain_targets_find(
    *, actor: str, resource: str, account: str | None = None
) -> tuple[Account, Actor, Resource]:
    """Staff lookup (`manage.py explain_access`): the actor by id, email (of an identity) or
    name; the resource by id, name or address; each in `account` (id or slug) when given, else
    wherever it is (the resource then in the actor's account). NotFound / Ambiguous."""
    accounts = Account.objects.all()
    if account is not None:
        by_id = _valid_uuids([account])
        accounts = accounts.filter(Q(slug=account) | Q(pk__in=by_id))
    actors = Actor.objects.filter(account__in=accounts)
    actor_ids = _valid_uuids([actor])
    found = list(
        actors.filter(
            Q(pk__in=actor_ids)
            | Q(identities__email__iexact=actor)
            | Q(identities__provider_identifier__iexact=actor)
            | Q(name=actor)
        ).distinct()
    )
    actor_row = _one("actor", found)
    resources = Resource.objects.filter(account_id=actor_row.account_id)
    resource_row = _one(
        "resource",
        list(
            resources.filter(
                Q(pk__in=_valid_uuids([resource])) | Q(name=resource) | Q(address=resource)
            )
        ),
    )
    return actor_row.account, actor_row, resource_row


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def explanation_text(explanation: Explanation) -> str:
    """The explanation as plain text (the command prints it)."""
    e, ctx = explanation, explanation.context
    lines = [
        f"{e.actor_name} → {e.resource_name}: " + ("ALLOWED" if e.allowed else "DENIED"),
    ]
    if e.reason:
        lines.append(f"  reason: {e.reason}")
    if e.granting_policy is not None:
        lines.append(
            f"  granted by policy {e.granting_policy.policy_id} "
            f"(group {e.granting_policy.group_name}), until {_when(e.expires_at)}"
        )
    client = f"{ctx.client_name} ({ctx.client_id})" if ctx.client_id else "none"
    provider = ctx.provider_name or (str(ctx.provider_id) if ctx.provider_id else "none")
    lines += [
        f"  at {_when(ctx.at)}; client {client}, version {ctx.version or 'unknown'}",
        f"  from {ctx.remote_ip or 'unknown address'} in {ctx.location or 'unknown location'}, "
        f"provider {provider}, {'verified' if ctx.verified else 'not verified'}",
        "policies:" if e.policies else "policies: none",
    ]
    for policy in e.policies:
        state = "grants" if policy.grants else "does not grant"
        flags = [
            "disabled" if policy.disabled else "enabled",
            f"member: {policy.membership}" if policy.member else "not a member",
        ]
        lines.append(
            f"  - {policy.policy_id} group {policy.group_name} ({', '.join(flags)}): {state}"
        )
        if policy.description:
            lines.append(f"      {policy.description}")
        for c in policy.conditions:
            mark = "ok  " if c.passed else "FAIL"
            seen = f" [{c.evaluated_against}]" if c.evaluated_against else ""
            lines.append(f"      {mark} {c.property} {c.operator} {', '.join(c.values)}{seen}")
            if c.reason:
                lines.append(f"           {c.reason}")
    lines.append("sites:" if e.sites else "sites: none")
    for site in e.sites:
        chosen = f", would use {site.chosen_gateway_name}" if site.chosen_gateway_id else ""
        lines.append(
            f"  - {site.site_name}: {site.online_gateways} online, "
            f"{site.compatible_gateways} compatible{chosen}"
        )
    return "\n".join(lines)


def _valid_uuids(values: Iterable[str]) -> list[uuid.UUID]:
    found = []
    for value in values:
        try:
            found.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return found


def _access_resource(resource: Resource) -> ra.AccessResource:
    """The resource as `resources.access` sees it, with its sites (when no grant loaded it)."""
    sites = [
        ra.SiteRef(id=sid, name=name)
        for sid, name in ResourceConnection.objects.filter(
            account_id=resource.account_id, resource_id=resource.pk
        ).values_list("gateway_group_id", "gateway_group__name")
    ]
    sites.sort(key=lambda s: (s.name, str(s.id)))
    return ra.AccessResource(
        id=resource.pk,
        type=resource.type,
        address=resource.address,
        address_description=resource.address_description,
        name=resource.name,
        ip_stack=resource.ip_stack,
        filters=resource.filters or [],
        sites=tuple(sites),
    )


def _site_checks(
    account_id: Any,
    resource: ra.AccessResource,
    online: set[str],
    candidates: list[Gateway],
    chosen: Gateway | None,
) -> list[SiteCheck]:
    online_by_site: dict[uuid.UUID, int] = {}
    for site_id in Gateway.objects.filter(
        account_id=account_id, group_id__in=list(resource.site_ids), pk__in=_valid_uuids(online)
    ).values_list("group_id", flat=True):
        online_by_site[site_id] = online_by_site.get(site_id, 0) + 1
    compatible: dict[uuid.UUID, int] = {}
    for gateway in candidates:
        compatible[gateway.group_id] = compatible.get(gateway.group_id, 0) + 1
    return [
        SiteCheck(
            site_id=site.id,
            site_name=site.name,
            online_gateways=online_by_site.get(site.id, 0),
            compatible_gateways=compatible.get(site.id, 0),
            chosen_gateway_id=chosen.pk if chosen and chosen.group_id == site.id else None,
            chosen_gateway_name=chosen.name if chosen and chosen.group_id == site.id else None,
        )
        for site in resource.sites
    ]


def _reason(
    *,
    account_row: Account,
    actor_row: Actor,
    resource: ra.AccessResource,
    checks: list[PolicyCheck],
    auth: ra.Authorization,
    version: str | None,
    sites: list[SiteCheck],
) -> str:
    """The shortest honest reason, in the order create_flow meets the obstacles."""
    if account_row.disabled_at is not None:
        return R_ACCOUNT_DISABLED
    if actor_row.disabled_at is not None:
        return R_ACTOR_DISABLED
    if not auth.ok:
        if not checks:
            return R_NO_POLICY
        mine = [c for c in checks if c.member]
        if not mine:
            return R_NOT_MEMBER
        enabled = [c for c in mine if not c.disabled]
        if not enabled:
            return R_ALL_DISABLED if all(c.disabled for c in checks) else R_MEMBER_DISABLED
        if not resource.sites:
            return R_NO_SITE
        if adapt_resource_for_version(resource, version) is None:
            return f"client version {version or 'unknown'} cannot use this {resource.type} resource"
        failing = [
            next(cond.reason for cond in c.conditions if not cond.passed and cond.reason)
            for c in enabled
            if any(not cond.passed for cond in c.conditions)
        ]
        unique = list(dict.fromkeys(failing))
        if unique:
            return "; or ".join(unique) if len(unique) > 1 else unique[0]
        return "not authorised"  # pragma: no cover - every refusal above has a cause
    if not sites:  # pragma: no cover - an authorised resource is connected (§5.2 rule 3)
        return R_NO_SITE
    if not any(s.online_gateways for s in sites):
        names = ", ".join(s.site_name for s in sites)
        return f"no gateway of site {names} online"
    return (
        f"no online gateway of site {', '.join(s.site_name for s in sites)} "
        f"is compatible with client version {version or 'unknown'}"
    )


__all__ = [
    "AccessContext",
    "ConditionCheck",
    "Explanation",
    "PolicyCheck",
    "SiteCheck",
    "access_explain",
    "access_explain_for",
    "explain_targets_find",
    "explanation_text",
    "format_time_windows",
]
