"""Policies: which actor group may reach which resource, under which conditions (domain.md §2.13).

Flow deletions that the original's replication hooks derive from policy changes (§4.1: conditions,
group or resource changed; disabled; deleted) happen here explicitly and are recorded.
"""

from __future__ import annotations

from typing import Any, Final

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.auth import P, Subject, ensure_permissions, trail_for
from accounts.models import ActorGroup, AuthProvider
from firezone import changes
from firezone.errors import ValidationFailed
from firezone.lookup import get_or_not_found
from resources import conditions as conds
from resources.models import Flow, Policy, Resource
from resources.services.resources import UNSET

MSG_BLANK: Final = "can't be blank"
MSG_INVALID: Final = "is invalid"
MSG_DUPLICATE: Final = "Policy for the selected Group and Resource already exists"
DUPLICATE_FIELD: Final = "__all__"
UNIQUE_INDEX: Final = "policies_account_id_resource_id_actor_group_id_index"


def _clean_description(value: Any, errors: dict[str, list[str]]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors["description"] = [MSG_INVALID]
        return None
    text = value.strip()
    if len(text) > 1024:
        errors["description"] = ["should be at most 1024 character(s)"]
    return text or None


def _clean_conditions(
    value: Any, resource_type: str, errors: dict[str, list[str]]
) -> list[dict[str, object]]:
    try:
        cleaned = conds.clean_conditions(value, resource_type=resource_type)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        return []
    return [condition.to_dict() for condition in cleaned]


def _group(subject: Subject, group_id: Any, errors: dict[str, list[str]]) -> ActorGroup | None:
    if group_id is None or group_id == "":
        errors["actor_group_id"] = [MSG_BLANK]
        return None
    # Another account's group is reported as missing (NotFound), never as a form error.
    return get_or_not_found(ActorGroup, group_id, account_id=subject.account_id)


def _resource(subject: Subject, resource_id: Any, errors: dict[str, list[str]]) -> Resource | None:
    if resource_id is None or resource_id == "":
        errors["resource_id"] = [MSG_BLANK]
        return None
    return get_or_not_found(Resource, resource_id, account_id=subject.account_id)


def _save(policy: Policy, *, create: bool) -> None:
    """Insert/update; a concurrent duplicate caught by the unique index becomes a form error."""
    try:
        with transaction.atomic():
            if create:
                policy.save(force_insert=True)
            else:
                policy.save()
    except IntegrityError as exc:
        if UNIQUE_INDEX in str(exc):
            raise ValidationFailed({DUPLICATE_FIELD: [MSG_DUPLICATE]}) from exc
        raise


def _duplicate_exists(policy: Policy) -> bool:
    return (
        Policy.objects.filter(
            account_id=policy.account_id,
            resource_id=policy.resource_id,
            actor_group_id=policy.actor_group_id,
        )
        .exclude(pk=policy.pk)
        .exists()
    )


def _load(subject: Subject, policy: Policy | Any) -> Policy:
    return get_or_not_found(Policy, policy, for_update=True, account_id=subject.account_id)


def _end_flows(policy: Policy, subject: Subject) -> None:
    changes.delete(Flow.objects.filter(policy_id=policy.pk), subject=subject)


@transaction.atomic
def policy_create(
    *,
    subject: Subject,
    actor_group_id: Any,
    resource_id: Any,
    description: str | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> Policy:
    """Grant a group of the account access to a resource of the account."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    errors: dict[str, list[str]] = {}
    group = _group(subject, actor_group_id, errors)
    resource = _resource(subject, resource_id, errors)
    clean_description = _clean_description(description, errors)
    clean_conditions = _clean_conditions(conditions, resource.type if resource else "", errors)
    if errors:
        raise ValidationFailed(errors)
    assert group is not None and resource is not None
    policy = Policy(
        account_id=subject.account_id,
        actor_group=group,
        resource=resource,
        description=clean_description,
        conditions=clean_conditions,
        **trail_for(subject),
    )
    if _duplicate_exists(policy):
        raise ValidationFailed({DUPLICATE_FIELD: [MSG_DUPLICATE]})
    _save(policy, create=True)
    changes.inserted(policy, subject=subject)
    return policy


@transaction.atomic
def policy_update(
    *,
    subject: Subject,
    policy: Policy | Any,
    description: Any = UNSET,
    actor_group_id: Any = UNSET,
    resource_id: Any = UNSET,
    conditions: Any = UNSET,
) -> Policy:
    """Change the given fields. A new group, resource or conditions end the policy's flows."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    policy = _load(subject, policy)
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if description is not UNSET:
        values["description"] = _clean_description(description, errors)
    if actor_group_id is not UNSET:
        group = _group(subject, actor_group_id, errors)
        if group is not None:
            values["actor_group_id"] = group.pk
    resource_type = policy.resource.type
    if resource_id is not UNSET:
        resource = _resource(subject, resource_id, errors)
        if resource is not None:
            values["resource_id"] = resource.pk
            resource_type = resource.type
    if conditions is not UNSET or "resource_id" in values:
        # A new resource re-checks the kept conditions (e.g. time windows on the Internet).
        raw = policy.conditions if conditions is UNSET else conditions
        values["conditions"] = _clean_conditions(raw, resource_type, errors)
    if errors:
        raise ValidationFailed(errors)

    grants_changed = any(
        f in values and values[f] != getattr(policy, f)
        for f in ("conditions", "actor_group_id", "resource_id")
    )
    old = changes.row_image(policy)
    assert old is not None
    for field_name, value in values.items():
        setattr(policy, field_name, value)
    if _duplicate_exists(policy):
        raise ValidationFailed({DUPLICATE_FIELD: [MSG_DUPLICATE]})
    _save(policy, create=False)
    changes.updated(old, policy, subject=subject)
    if grants_changed:
        _end_flows(policy, subject)
    return policy


@transaction.atomic
def policy_disable(*, subject: Subject, policy: Policy | Any) -> Policy:
    """Stop granting access (keeps an earlier `disabled_at`); ends the policy's flows."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    policy = _load(subject, policy)
    _set_disabled(policy, True, subject)
    _end_flows(policy, subject)
    return policy


@transaction.atomic
def policy_enable(*, subject: Subject, policy: Policy | Any) -> Policy:
    ensure_permissions(subject, P.POLICY_MANAGE)
    policy = _load(subject, policy)
    _set_disabled(policy, False, subject)
    return policy


def _set_disabled(policy: Policy, disabled: bool, subject: Subject) -> None:
    """Set `disabled_at` to now or clear it, and record the update; nothing when the policy
    already is (a disabled policy keeps its earlier `disabled_at`)."""
    if (policy.disabled_at is not None) == disabled:
        return
    old = changes.row_image(policy)
    assert old is not None
    policy.disabled_at = timezone.now() if disabled else None
    policy.save(update_fields=["disabled_at", "updated_at"])
    changes.updated(old, policy, subject=subject)


@transaction.atomic
def policy_delete(*, subject: Subject, policy: Policy | Any) -> Policy:
    """Hard-delete a policy and its flows."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    policy = _load(subject, policy)
    changes.delete(policy, subject=subject)
    return policy


@transaction.atomic
def policies_delete_for(
    *,
    subject: Subject,
    resource: Resource | Any = None,
    actor_group: ActorGroup | Any = None,
    provider: AuthProvider | Any = None,
) -> int:
    """Delete every policy of one resource, one group, or the groups synced from one provider
    (exactly one of them); returns how many policies were deleted."""
    ensure_permissions(subject, P.POLICY_MANAGE)
    given = [v for v in (resource, actor_group, provider) if v is not None]
    if len(given) != 1:
        raise TypeError("policies_delete_for needs exactly one of resource, actor_group, provider")
    policies = Policy.objects.filter(account_id=subject.account_id)
    if resource is not None:
        target = get_or_not_found(Resource, resource, account_id=subject.account_id)
        policies = policies.filter(resource_id=target.pk)
    elif actor_group is not None:
        target_group = get_or_not_found(ActorGroup, actor_group, account_id=subject.account_id)
        policies = policies.filter(actor_group_id=target_group.pk)
    else:
        target_provider = get_or_not_found(AuthProvider, provider, account_id=subject.account_id)
        policies = policies.filter(actor_group__provider_id=target_provider.pk)
    deleted = list(policies.select_for_update())
    changes.delete(deleted, subject=subject)
    return len(deleted)
