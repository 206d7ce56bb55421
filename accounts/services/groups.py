"""Actor groups and memberships (domain.md §2.3).

Users edit *static* groups only. Synced groups belong to directory sync; the managed "Everyone"
group's membership is computed by `everyone_memberships_update`. Every membership row written or
removed here is recorded as a change (membership deletes revoke flows downstream, §4.1).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, connection, transaction

from accounts.auth import SYSTEM_TRAIL, P, Subject, ensure_permissions
from accounts.models import Account, Actor, ActorGroup, ActorGroupMembership
from accounts.services._names import clean_display_name
from firezone import changes
from firezone.errors import Refused, ValidationFailed
from firezone.lookup import get_or_not_found

EVERYONE = "Everyone"
MSG_TAKEN = "has already been taken"
MSG_RESERVED = "is reserved"
MSG_UNKNOWN_ACTOR = "does not exist"


def _ensure_name_free(account_id: Any, name: str, *, exclude_pk: Any = None) -> None:
    # Names are unique among non-synced groups (static and managed), like the partial index.
    taken = (
        ActorGroup.objects.filter(account_id=account_id, name=name, provider__isnull=True)
        .exclude(pk=exclude_pk)
        .exists()
    )
    if taken:
        raise ValidationFailed({"name": [MSG_TAKEN]})


def _save(group: ActorGroup, *, creating: bool) -> None:
    try:
        with transaction.atomic():
            group.save(force_insert=creating)
    except IntegrityError as exc:
        if "actor_groups_account_id_name_index" in str(exc):
            raise ValidationFailed({"name": [MSG_TAKEN]}) from exc
        raise


def _ensure_editable(group: ActorGroup) -> None:
    if group.is_synced:
        raise Refused(
            "Groups synced from an identity provider cannot be changed.", code="synced_group"
        )
    if group.is_managed:
        raise Refused("The Everyone group is managed by Firezone.", code="managed_group")


def _actors_of(account_id: Any, actor_ids: Iterable[Any]) -> list[Actor]:
    """The actors named by `actor_ids` (instances or ids); unknown or foreign ids are invalid."""
    try:
        ids = {uuid.UUID(str(a.pk if isinstance(a, Actor) else a)) for a in actor_ids}
    except ValueError as exc:
        raise ValidationFailed({"memberships": [MSG_UNKNOWN_ACTOR]}) from exc
    actors = list(Actor.objects.filter(account_id=account_id, pk__in=ids))
    if len(actors) != len(ids):
        raise ValidationFailed({"memberships": [MSG_UNKNOWN_ACTOR]})
    return actors


# --- membership rows ------------------------------------------------------------------------------


def membership_insert(
    *, group: ActorGroup, actor_id: Any, subject: Subject | None = None
) -> ActorGroupMembership:
    """Insert one membership row and record it (no rule checks: callers decide)."""
    membership = ActorGroupMembership.objects.create(
        group=group, actor_id=actor_id, account_id=group.account_id
    )
    changes.inserted(membership, subject=subject)
    return membership


def memberships_delete(
    memberships: Iterable[ActorGroupMembership] | Any, *, subject: Subject | None = None
) -> None:
    """Hard-delete memberships (and flows created under them), recording every row."""
    changes.delete(memberships, subject=subject)


def group_members_replace(
    *, group: ActorGroup, actors: Iterable[Actor], subject: Subject | None = None
) -> None:
    """Make `actors` the exact member set of `group` (only changed rows are written)."""
    wanted = {a.pk for a in actors}
    current = {m.actor_id: m for m in group.memberships.all()}
    memberships_delete([m for a, m in current.items() if a not in wanted], subject=subject)
    for actor_id in wanted - set(current):
        membership_insert(group=group, actor_id=actor_id, subject=subject)


def _editable_group_and_actor(
    subject: Subject, group: ActorGroup | Any, actor: Actor | Any
) -> tuple[ActorGroup, Actor]:
    """Both of the subject's account, the group locked and editable (`actor:manage`)."""
    ensure_permissions(subject, P.ACTOR_MANAGE)
    group = get_or_not_found(ActorGroup, group, account_id=subject.account_id, for_update=True)
    actor = get_or_not_found(Actor, actor, account_id=subject.account_id)
    _ensure_editable(group)
    return group, actor


@transaction.atomic
def membership_add(*, subject: Subject, group: ActorGroup, actor: Actor) -> ActorGroupMembership:
    """Add an actor to an editable group (idempotent)."""
    group, actor = _editable_group_and_actor(subject, group, actor)
    existing = ActorGroupMembership.objects.filter(group=group, actor=actor).first()
    return existing or membership_insert(group=group, actor_id=actor.pk, subject=subject)


@transaction.atomic
def membership_remove(*, subject: Subject, group: ActorGroup, actor: Actor) -> None:
    """Remove an actor from an editable group (no-op when not a member)."""
    group, actor = _editable_group_and_actor(subject, group, actor)
    memberships_delete(
        ActorGroupMembership.objects.filter(group=group, actor=actor), subject=subject
    )


# --- Everyone -------------------------------------------------------------------------------------

_EVERYONE_SQL = f"""
INSERT INTO {ActorGroupMembership._meta.db_table} (id, actor_id, group_id, account_id)
SELECT gen_random_uuid(), a.id, g.id, a.account_id
FROM {Actor._meta.db_table} a
JOIN {ActorGroup._meta.db_table} g ON g.account_id = a.account_id AND g.type = %s
WHERE a.account_id = %s AND a.type = ANY(%s)
ON CONFLICT (actor_id, group_id) DO NOTHING
RETURNING id, actor_id, group_id
"""  # noqa: S608 (table names come from model metadata, values are parameters)


@transaction.atomic
def everyone_memberships_update(
    *, account_id: Any, subject: Subject | None = None
) -> list[ActorGroupMembership]:
    """System path: every user and admin of the account joins every managed group.

    Run after an actor or a managed group is created and after directory sync. Hard deletes
    cascade, so there is nothing to remove; service accounts and API clients never join. Type
    changes and disabling do not remove anyone (§2.3). Returns the new memberships.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _EVERYONE_SQL,
            [str(ActorGroup.Type.MANAGED), str(account_id), [str(t) for t in Actor.USER_TYPES]],
        )
        rows = cursor.fetchall()
    created = [
        ActorGroupMembership(id=pk, actor_id=actor_id, group_id=group_id, account_id=account_id)
        for pk, actor_id, group_id in rows
    ]
    for membership in created:
        changes.inserted(membership, subject=subject)
    return created


@transaction.atomic
def group_create_everyone(*, account: Account) -> ActorGroup:
    """System path: the account's managed "Everyone" group, with all current users in it."""
    group = ActorGroup(account=account, name=EVERYONE, type=ActorGroup.Type.MANAGED, **SYSTEM_TRAIL)
    _ensure_name_free(account.pk, EVERYONE)
    _save(group, creating=True)
    changes.inserted(group)
    everyone_memberships_update(account_id=account.pk)
    return group


# --- static groups --------------------------------------------------------------------------------


@transaction.atomic
def group_create(
    *, subject: Subject, name: str, members: Iterable[Actor | Any] | None = None
) -> ActorGroup:
    """A static group of the subject's account, optionally with its first members."""
    ensure_permissions(subject, P.ACTOR_MANAGE)
    name = clean_display_name(name)
    actors = _actors_of(subject.account_id, members or [])
    _ensure_name_free(subject.account_id, name)
    group = ActorGroup(
        account_id=subject.account_id, name=name, type=ActorGroup.Type.STATIC, **subject.trail()
    )
    _save(group, creating=True)
    changes.inserted(group, subject=subject)
    for actor in actors:
        membership_insert(group=group, actor_id=actor.pk, subject=subject)
    return group


@transaction.atomic
def group_update(
    *,
    subject: Subject,
    group: ActorGroup,
    name: str | None = None,
    members: Iterable[Actor | Any] | None = None,
) -> ActorGroup:
    """Rename a static group and/or replace all its members (None = unchanged)."""
    ensure_permissions(subject, P.ACTOR_MANAGE)
    group = get_or_not_found(ActorGroup, group, account_id=subject.account_id, for_update=True)
    _ensure_editable(group)
    clean_name = clean_display_name(name) if name is not None else None
    actors = _actors_of(subject.account_id, members) if members is not None else None
    if clean_name is not None and clean_name != group.name:
        _ensure_name_free(subject.account_id, clean_name, exclude_pk=group.pk)
        old = changes.row_image(group)
        group.name = clean_name
        _save(group, creating=False)
        changes.updated(old, group, subject=subject)
    if actors is not None:
        group_members_replace(group=group, actors=actors, subject=subject)
    return group


@transaction.atomic
def group_members_change(
    *,
    subject: Subject,
    group: ActorGroup,
    add: Iterable[Actor | Any] = (),
    remove: Iterable[Actor | Any] = (),
) -> ActorGroup:
    """Add and remove some members of a static group, leaving the other memberships alone (the
    "Edit Actors" page applies the admin's pending changes to the current members)."""
    ensure_permissions(subject, P.ACTOR_MANAGE)
    group = get_or_not_found(ActorGroup, group, account_id=subject.account_id, for_update=True)
    _ensure_editable(group)
    removed = {a.pk for a in _actors_of(subject.account_id, remove)}
    added = {a.pk for a in _actors_of(subject.account_id, add)} - removed
    if removed:
        memberships_delete(
            ActorGroupMembership.objects.filter(group=group, actor_id__in=removed), subject=subject
        )
    current = set(group.memberships.filter(actor_id__in=added).values_list("actor_id", flat=True))
    for actor_id in sorted(added - current, key=str):
        membership_insert(group=group, actor_id=actor_id, subject=subject)
    return group


@transaction.atomic
def group_delete(*, subject: Subject, group: ActorGroup) -> ActorGroup:
    """Hard-delete a static group with its memberships, policies and flows. Synced groups
    belong to directory sync, and the Everyone group is refused too (§8.10 fix)."""
    ensure_permissions(subject, P.ACTOR_GROUP_MANAGE)
    group = get_or_not_found(ActorGroup, group, account_id=subject.account_id, for_update=True)
    _ensure_editable(group)
    changes.delete(group, subject=subject)
    return group
