"""Flows: authorising a client to reach a resource through a gateway (domain.md §2.13-§2.14).

Flow inserts are recorded in the change log but not broadcast (§4.1: the client tells the
gateway directly); deletes are broadcast so gateways revoke or re-authorise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.auth import P, Subject, ensure_permissions
from accounts.models import Account, ActorGroupMembership
from firezone import changes
from firezone.errors import NotFound, Refused
from firezone.lookup import get_or_not_found
from gateways.models import Client, Gateway
from resources import conditions as conds
from resources.models import Flow, Resource
from resources.selectors.policies import policies_for_client_resource, policies_in_trial_order

# When neither the policy nor the session token expires (e.g. a service-account token without
# expiry, §8 item 6), a flow still needs an end: the gateway re-authorises when it lapses.
MAX_FLOW_LIFETIME: Final = timedelta(days=7)


class FlowForbidden(Refused):
    """No policy allows this client to reach the resource now."""

    code = "forbidden"

    def __init__(self, violated_properties: Iterable[str] = ()) -> None:
        super().__init__("You are not allowed to access this resource.", code="forbidden")
        self.violated_properties: tuple[str, ...] = tuple(violated_properties)


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """A policy the caller already found satisfied, with its conditions' expiry (None = none)."""

    policy_id: Any
    expires_at: datetime | None = None


def client_request_context(client: Client, *, now: datetime | None = None) -> conds.RequestContext:
    """What a client's policy conditions are evaluated against: its last connection."""
    identity = client.identity if client.identity_id else None
    return conds.RequestContext(
        now=now or timezone.now(),
        remote_ip=client.last_seen_remote_ip,
        remote_ip_location_region=client.last_seen_remote_ip_location_region,
        provider_id=identity.provider_id if identity is not None else None,
        client_verified=client.verified_at is not None,
    )


@transaction.atomic
def flow_authorize(
    *,
    subject: Subject,
    client: Client | Any,
    resource: Resource | Any,
    gateway: Gateway | Any,
    request_context: conds.RequestContext | None = None,
    decision: PolicyDecision | None = None,
) -> Flow:
    """Authorise the subject's own `client` to reach `resource` through `gateway` and record it.

    Candidates are the enabled policies of the actor's groups for the resource, when the resource
    is connected to the gateway's site; the longest-lasting conforming one wins. None conforming
    → FlowForbidden carrying the violated condition properties. The flow ends at the earlier of
    the policy's and the session token's expiry (capped at MAX_FLOW_LIFETIME when neither has
    one). `request_context` defaults to the client's last-seen connection.

    With `decision` (conditions already evaluated by the caller, e.g. the client socket's cache,
    protocol.md §5.4) the policy is only checked to still grant the resource through this site
    (NotFound otherwise) and its conditions are not evaluated again.
    """
    ensure_permissions(subject, P.FLOW_CREATE)
    account_id = subject.account_id
    # Only one's own client: another actor's device is as invisible as another account's.
    client = get_or_not_found(Client, client, account_id=account_id, actor_id=subject.actor_id)
    resource = get_or_not_found(Resource, resource, account_id=account_id)
    gateway = get_or_not_found(Gateway, gateway, account_id=account_id)
    if subject.token_id is None:
        raise Refused("A flow needs the client's session token.", code="missing_token")

    candidates = policies_for_client_resource(
        account_id=account_id,
        actor_id=client.actor_id,
        resource_id=resource.pk,
        site_id=gateway.group_id,
    )
    if decision is None:
        ctx = request_context or client_request_context(client)
        now = ctx.now
        policy, result = conds.evaluate_policies(
            ((p, p.conditions) for p in policies_in_trial_order(candidates)), ctx
        )
        if policy is None:
            raise FlowForbidden(result.violated_properties)
        condition_expiry = result.expires_at
    else:
        now = request_context.now if request_context is not None else timezone.now()
        policy = candidates.filter(pk=decision.policy_id).first()
        if policy is None:  # deleted, disabled or disconnected since the caller evaluated it
            raise NotFound()
        condition_expiry = decision.expires_at
    membership = ActorGroupMembership.objects.filter(
        account_id=account_id, actor_id=client.actor_id, group_id=policy.actor_group_id
    ).first()
    if membership is None:  # pragma: no cover - the candidate query joined through it
        raise NotFound()

    expires_at = conds.authorization_expiry(condition_expiry, subject.expires_at)
    if expires_at is None:
        expires_at = now + MAX_FLOW_LIFETIME

    flow = _flow_insert(
        subject=subject,
        client=client,
        gateway=gateway,
        resource_id=resource.pk,
        policy_id=policy.pk,
        membership_id=membership.pk,
        expires_at=expires_at,
    )
    flow.policy, flow.resource, flow.actor_group_membership = policy, resource, membership
    return flow


def flow_insert_decided(
    *,
    subject: Subject,
    client: Client,
    gateway: Gateway,
    resource_id: Any,
    policy_id: Any,
    membership_id: Any,
    expires_at: datetime,
) -> Flow:
    """Record a flow whose policy, membership and expiry were decided in memory (the client
    socket's access hub, protocol.md §5.4): one insert and its change-log row, nothing chosen
    again here. The rows it names must still exist: a policy, membership, resource or gateway
    deleted since the decision raises NotFound (the foreign keys are checked when the statement
    commits)."""
    ensure_permissions(subject, P.FLOW_CREATE)
    if (
        subject.token_id is None
        or client.account_id != subject.account_id
        or client.actor_id != subject.actor_id
        or gateway.account_id != subject.account_id
    ):
        raise NotFound()
    try:
        return _flow_insert(
            subject=subject,
            client=client,
            gateway=gateway,
            resource_id=resource_id,
            policy_id=policy_id,
            membership_id=membership_id,
            expires_at=expires_at,
        )
    except IntegrityError:
        raise NotFound() from None


def _flow_insert(
    *,
    subject: Subject,
    client: Client,
    gateway: Gateway,
    resource_id: Any,
    policy_id: Any,
    membership_id: Any,
    expires_at: datetime,
) -> Flow:
    """The flow row and its change-log row, in one statement (logged, never published: the
    client tells the gateway itself, §4.1). Outside a transaction it commits by itself."""
    flow = Flow(
        account_id=subject.account_id,
        policy_id=policy_id,
        client=client,
        gateway=gateway,
        resource_id=resource_id,
        token_id=subject.token_id,
        actor_group_membership_id=membership_id,
        client_remote_ip=subject.context.remote_ip or client.last_seen_remote_ip,
        client_user_agent=(subject.context.user_agent or client.last_seen_user_agent or "")[:255],
        gateway_remote_ip=gateway.last_seen_remote_ip,
        expires_at=expires_at,
    )
    changes.insert_logged(flow, subject=subject)
    return flow


@transaction.atomic
def flows_delete_expired(*, now: datetime | None = None) -> int:
    """System job (domain.md §5, every minute): delete flows whose authorisation has ended."""
    expired = Flow.objects.filter(expires_at__lte=now or timezone.now())
    return len(changes.delete(expired))


@transaction.atomic
def flows_delete_stale_for_client(
    *, client: Client, connectable_resource_ids: Iterable[Any]
) -> int:
    """System path (client connect): delete the client's flows for resources it may no longer
    use; returns how many flows were deleted."""
    # One small read in the common case (no stale flow): the client's flows, filtered here
    # rather than with a NOT IN of every connectable resource.
    connectable = {str(r) for r in connectable_resource_ids}
    stale = [
        flow_id
        for flow_id, resource_id in Flow.objects.filter(
            account_id=client.account_id, client_id=client.pk
        ).values_list("id", "resource_id")
        if str(resource_id) not in connectable
    ]
    if not stale:
        return 0
    return len(changes.delete(Flow.objects.filter(pk__in=stale)))


def flows_delete_for_disabled_account(
    *, account: Account, subject: Subject | None, **_signal: Any
) -> None:
    """`accounts.signals.account_disabled` receiver: a disabled account is treated like a deleted
    one, no access survives (domain.md §4.1)."""
    changes.delete(Flow.objects.filter(account=account), subject=subject)
