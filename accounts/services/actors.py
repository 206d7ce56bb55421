"""Actor writes (domain.md §2.2): users, admins, service accounts and API clients.

Guards: a subject grants only types whose permissions it holds itself, plan limits apply to new
seats and service accounts, and an account always keeps one enabled admin.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import limits
from accounts.auth import P, Subject, can_grant_role, ensure_permissions
from accounts.models import Account, Actor, ActorGroup, ActorGroupMembership, Token
from accounts.services import groups as group_services
from accounts.services._names import clean_display_name
from firezone import changes
from firezone.errors import LimitReached, Refused, ValidationFailed
from firezone.lookup import get_or_not_found

MSG_BLANK = "can't be blank"
MSG_INVALID = "is invalid"
MSG_CANT_GRANT = "does not have permissions to grant this actor type"
MSG_RESERVED = "is reserved"
MSG_UNKNOWN_GROUP = "does not exist"


clean_actor_name = clean_display_name  # trimmed, 1-255 characters; imported by provisioning


def _validate(
    *, name: Any = None, type: Any = None, check_name: bool, check_type: bool
) -> tuple[str | None, str | None]:
    errors: dict[str, list[str]] = {}
    clean_name = None
    if check_name:
        try:
            clean_name = clean_display_name(name)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if check_type:
        if not type:
            errors["type"] = [MSG_BLANK]
        elif type not in Actor.Type.values:
            errors["type"] = [MSG_INVALID]
    if errors:
        raise ValidationFailed(errors)
    return clean_name, (str(type) if check_type else None)


def _group_ids(memberships: Iterable[Any]) -> set[uuid.UUID]:
    """`memberships` as group ids, groups, or `{"group_id": ...}` maps."""
    ids: set[uuid.UUID] = set()
    for item in memberships:
        value = item.get("group_id") if isinstance(item, Mapping) else item
        value = value.pk if isinstance(value, ActorGroup) else value
        try:
            ids.add(uuid.UUID(str(value)))
        except ValueError as exc:
            raise ValidationFailed({"memberships.group_id": [MSG_UNKNOWN_GROUP]}) from exc
    return ids


def _editable_groups(account_id: Any, memberships: Iterable[Any]) -> list[ActorGroup]:
    """The groups of `memberships`; managed and synced groups are reserved."""
    ids = _group_ids(memberships)
    found = list(ActorGroup.objects.filter(account_id=account_id, pk__in=ids))
    if len(found) != len(ids):
        raise ValidationFailed({"memberships.group_id": [MSG_UNKNOWN_GROUP]})
    if any(not g.is_editable for g in found):
        raise ValidationFailed({"memberships.group_id": [MSG_RESERVED]})
    return found


def _ensure_can_grant(subject: Subject, actor_type: str) -> None:
    if not can_grant_role(subject, actor_type):
        raise ValidationFailed({"type": [MSG_CANT_GRANT]})


def _seats_reached() -> LimitReached:
    return LimitReached(
        "You have reached the maximum number of seats allowed by your subscription plan.",
        code="seats_limit_reached",
        reason="Seat Limit Reached",
    )


def _ensure_within_limits(account_id: Any, actor_type: str) -> None:
    # Lock the account so concurrent creates count each other (billing limits, §2.15).
    account = Account.objects.select_for_update().get(pk=account_id)
    if actor_type == Actor.Type.SERVICE_ACCOUNT:
        if not limits.can_create_service_accounts(account):
            raise LimitReached(
                "You have reached the maximum number of service accounts allowed by your "
                "subscription plan.",
                code="service_accounts_limit_reached",
                reason="Service Accounts Limit Reached",
            )
    elif actor_type == Actor.Type.ACCOUNT_ADMIN_USER:
        if not (limits.can_create_users(account) and limits.can_create_admins(account)):
            raise _seats_reached()
    elif actor_type == Actor.Type.ACCOUNT_USER and not limits.can_create_users(account):
        raise _seats_reached()


def _other_enabled_admin_exists(actor: Actor) -> bool:
    """Another enabled admin of the account, locking the admins so two concurrent demotions
    cannot both see the other one."""
    admins = (
        Actor.objects.select_for_update()
        .filter(
            account_id=actor.account_id,
            type=Actor.Type.ACCOUNT_ADMIN_USER,
            disabled_at__isnull=True,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return any(pk != actor.pk for pk in admins)


def _refuse_last_enabled_admin(actor: Actor, action: str) -> None:
    """An account keeps one enabled admin: `action` ("disable", "delete") is refused on it."""
    if actor.is_admin and actor.is_active and not _other_enabled_admin_exists(actor):
        raise Refused(
            f"You can't {action} the last admin of an account.",
            code=f"cant_{action}_the_last_admin",
        )


def _insert(
    *,
    account_id: Any,
    name: str,
    type: str,
    groups: Iterable[ActorGroup] = (),
    last_synced_at: datetime | None = None,
    subject: Subject | None,
) -> Actor:
    actor = Actor.objects.create(
        account_id=account_id, name=name, type=type, last_synced_at=last_synced_at
    )
    changes.inserted(actor, subject=subject)
    for group in groups:
        group_services.membership_insert(group=group, actor_id=actor.pk, subject=subject)
    # Every create path recomputes Everyone (§2.2).
    group_services.everyone_memberships_update(account_id=account_id, subject=subject)
    return actor


@transaction.atomic
def actor_create(
    *,
    subject: Subject,
    name: str,
    type: str,
    memberships: Iterable[Any] | None = None,
) -> Actor:
    """Create an actor in the subject's account, optionally in some static groups."""
    ensure_permissions(subject, P.ACTOR_MANAGE)
    clean_name, clean_type = _validate(name=name, type=type, check_name=True, check_type=True)
    assert clean_name is not None and clean_type is not None
    _ensure_can_grant(subject, clean_type)
    groups = _editable_groups(subject.account_id, memberships or [])
    _ensure_within_limits(subject.account_id, clean_type)
    return _insert(
        account_id=subject.account_id,
        name=clean_name,
        type=clean_type,
        groups=groups,
        subject=subject,
    )


@transaction.atomic
def actor_create_system(
    *,
    account: Account,
    name: str,
    type: str,
    last_synced_at: datetime | None = None,
) -> Actor:
    """System path (sign-up, Stripe provisioning, seeds, directory sync): no grant or plan-limit
    check, same validation."""
    clean_name, clean_type = _validate(name=name, type=type, check_name=True, check_type=True)
    assert clean_name is not None and clean_type is not None
    return _insert(
        account_id=account.pk,
        name=clean_name,
        type=clean_type,
        last_synced_at=last_synced_at,
        subject=None,
    )


@transaction.atomic
def actor_update(
    *,
    subject: Subject,
    actor: Actor,
    name: str | None = None,
    type: str | None = None,
    memberships: Iterable[Any] | None = None,
) -> Actor:
    """Rename (non-synced actors only: a synced actor's name comes from the IdP and is left
    alone), change the type, and/or replace the actor's memberships in static groups.
    None leaves a field unchanged."""
    ensure_permissions(subject, P.ACTOR_MANAGE)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id, for_update=True)
    rename = name is not None and not actor.is_synced
    clean_name, clean_type = _validate(
        name=name, type=type, check_name=rename, check_type=type is not None
    )
    groups = _editable_groups(subject.account_id, memberships) if memberships is not None else None
    if clean_type is not None and clean_type != actor.type:
        _ensure_can_grant(subject, clean_type)
        if actor.is_admin and not _other_enabled_admin_exists(actor):
            raise Refused(
                "You may not demote the last admin.",
                code="cant_remove_admin_type",
            )
    old = changes.row_image(actor)
    if clean_name is not None:
        actor.name = clean_name
    if clean_type is not None:
        actor.type = clean_type
    actor.save()
    changes.updated(old, actor, subject=subject)
    if groups is not None:
        _replace_editable_memberships(actor, groups, subject=subject)
    return actor


def _replace_editable_memberships(
    actor: Actor, groups: list[ActorGroup], *, subject: Subject
) -> None:
    # Memberships in Everyone and synced groups are not the user's to change.
    wanted = {g.pk for g in groups}
    current = ActorGroupMembership.objects.filter(
        actor=actor, group__provider__isnull=True, group__type=ActorGroup.Type.STATIC
    )
    present = set(current.values_list("group_id", flat=True))
    group_services.memberships_delete(current.exclude(group_id__in=wanted), subject=subject)
    for group in groups:
        if group.pk not in present:
            group_services.membership_insert(group=group, actor_id=actor.pk, subject=subject)


@transaction.atomic
def actor_disable(*, subject: Subject, actor: Actor) -> Actor:
    """Disable an actor and hard-delete all its tokens (closing its sessions and clients)."""
    ensure_permissions(subject, P.ACTOR_MANAGE, P.TOKEN_MANAGE)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id, for_update=True)
    _refuse_last_enabled_admin(actor, "disable")
    old = changes.row_image(actor)
    actor.disabled_at = actor.disabled_at or timezone.now()
    actor.save()
    changes.updated(old, actor, subject=subject)
    changes.delete(Token.objects.filter(actor=actor), subject=subject)
    return actor


@transaction.atomic
def actor_enable(*, subject: Subject, actor: Actor) -> Actor:
    ensure_permissions(subject, P.ACTOR_MANAGE)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id, for_update=True)
    old = changes.row_image(actor)
    actor.disabled_at = None
    actor.save()
    changes.updated(old, actor, subject=subject)
    return actor


@transaction.atomic
def actor_delete(*, subject: Subject, actor: Actor) -> Actor:
    """Hard-delete an actor with its identities, clients, tokens, memberships and flows."""
    ensure_permissions(subject, P.ACTOR_MANAGE)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id, for_update=True)
    _refuse_last_enabled_admin(actor, "delete")
    changes.delete(actor, subject=subject)
    return actor
