"""The write phase of a directory sync (billing_sync_jobs.md §2.4-§2.6): make a provider's
identities, synced groups and their memberships match what its directory returned.

`provider_sync_apply` takes the gathered upstream data and applies it in ONE transaction (the
original autocommits each step, §2.3 quirk): an error anywhere — a deletion circuit breaker, a
constraint, malformed input — leaves the database as it was. Everything written is recorded in
the change log with `firezone.changes`, in a few batched statements, and published when the
transaction commits: the device stream carries the whole sync as one message per account, so
each access hub applies it together and recomputes its sockets once.

Rows are compared before writing: a sync that finds nothing new upstream writes nothing and
publishes nothing (the original rewrote every identity and actor on every run).

Differences from the original, by decision:
* Soft delete is gone from this schema (every delete is a hard delete), so there are no
  soft-deleted rows to count, skip or resurrect: a row that is gone upstream is deleted, and
  if it comes back it is inserted anew.
* An actor's `last_synced_at` is set when sync creates it and whenever sync changes it (or when
  an existing actor first comes under sync), not on every run: it marks the actor as managed by
  sync; the provider's own `last_synced_at` tells when the directory was last read.
* An identity's `provider_state` keeps what sign-in stored there (the IdP tokens the browser
  session refresh needs); sync only sets `userinfo.email` (and the `email` column).
* Names are trimmed and cut to the 255-character columns (the original's 512 for actors
  overflowed); a blank actor name falls back to the e-mail or the identifier, a blank group name
  to its identifier, rather than failing the whole sync.
* A deletion circuit breaker refusal is a counted failure (`SyncRefused`), shown to the admin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.auth import PROVIDER_TRAIL
from accounts.models import (
    Actor,
    ActorGroup,
    ActorGroupMembership,
    AuthIdentity,
    AuthProvider,
)
from directory_sync.directory import (
    DirectoryGroup,
    DirectoryIdentity,
    Membership,
    SyncCountedFailure,
)
from firezone import changes, origin

NAME_MAX_LENGTH = 255
BATCH_SIZE = 2000

MSG_IDENTITIES_TOO_LARGE = "Sync deletion of identities too large"
MSG_GROUPS_TOO_LARGE = "Sync deletion of groups too large"


class SyncRefused(SyncCountedFailure):
    """The directory asked to delete too much at once (§2.4 circuit breaker): nothing changes;
    counted and shown to the admin like any failure they can act on."""


@dataclass(frozen=True)
class SyncResult:
    """What one sync changed, and the size of the directory it synced."""

    identities: int = 0  # upstream identities (deduplicated): "Synced N identities"
    groups: int = 0  # upstream groups (deduplicated): "… and M groups"
    identities_inserted: int = 0
    identities_updated: int = 0
    identities_deleted: int = 0
    groups_inserted: int = 0
    groups_updated: int = 0
    groups_deleted: int = 0
    memberships_inserted: int = 0
    memberships_deleted: int = 0

    @property
    def groups_upserted(self) -> int:
        return self.groups_inserted + self.groups_updated

    @property
    def changed(self) -> bool:
        return any(
            (
                self.identities_inserted,
                self.identities_updated,
                self.identities_deleted,
                self.groups_inserted,
                self.groups_updated,
                self.groups_deleted,
                self.memberships_inserted,
                self.memberships_deleted,
            )
        )


# --- rules ----------------------------------------------------------------------------------------


def deletion_refused(*, total: int, deleting: int) -> bool:
    """§2.4's breaker: `pct = round(deleting / total · 100)` (half away from zero, like Elixir's
    `round`); refused if `total > 40 and pct ≥ 25` or `total ≤ 40 and pct ≥ 50`. Nothing to
    delete or nothing existing always passes."""
    if total == 0 or deleting == 0:
        return False
    pct = (200 * deleting + total) // (2 * total)
    return pct >= 25 if total > 40 else pct >= 50


def _clip(value: str | None) -> str:
    return (value or "").strip()[:NAME_MAX_LENGTH].strip()


def _actor_name(identity: DirectoryIdentity) -> str:
    return (
        _clip(identity.name)
        or _clip(identity.email)
        or _clip(identity.provider_identifier)
        or "Unknown"
    )


def _group_name(group: DirectoryGroup) -> str:
    return _clip(group.name) or _clip(group.provider_identifier)


def _email(identity: DirectoryIdentity) -> str | None:
    return (identity.email or "").strip() or None


def _identity_key(provider_identifier: str) -> str:
    # `provider_identifier` is citext: identifiers differing only in case are one identity.
    return provider_identifier.strip().lower()


def _dedup_identities(identities: Iterable[DirectoryIdentity]) -> dict[str, DirectoryIdentity]:
    """The first of each identifier (case-insensitively), blank identifiers dropped."""
    upstream: dict[str, DirectoryIdentity] = {}
    for identity in identities:
        key = _identity_key(identity.provider_identifier or "")
        if key and key not in upstream:
            upstream[key] = identity
    return upstream


def _dedup_groups(groups: Iterable[DirectoryGroup]) -> dict[str, DirectoryGroup]:
    upstream: dict[str, DirectoryGroup] = {}
    for group in groups:
        key = (group.provider_identifier or "").strip()
        if key and key not in upstream:
            upstream[key] = group
    return upstream


def _synced_state(state: dict[str, Any] | None, email: str | None) -> dict[str, Any]:
    """The identity's state with the directory's e-mail in `userinfo.email`; the rest (sign-in
    tokens, claims) is kept."""
    state = dict(state or {})
    userinfo = state.get("userinfo")
    state["userinfo"] = {**(userinfo if isinstance(userinfo, dict) else {}), "email": email}
    return state


# --- the write phase ------------------------------------------------------------------------------


@transaction.atomic
def provider_sync_apply(
    *,
    provider: AuthProvider,
    identities: Iterable[DirectoryIdentity],
    groups: Iterable[DirectoryGroup],
    memberships: Iterable[Membership],
) -> SyncResult:
    """Apply a directory's identities, groups and memberships to `provider` (§2.4-§2.6).

    Raises `SyncRefused` (nothing written) when a deletion circuit breaker trips; any other
    error also leaves everything as it was. Every change-log row names the provider as its
    writer (`firezone.origin.identity_provider`)."""
    with changes.origin(origin.identity_provider(provider)):
        return _apply(
            provider=provider, identities=identities, groups=groups, memberships=memberships
        )


def _apply(
    *,
    provider: AuthProvider,
    identities: Iterable[DirectoryIdentity],
    groups: Iterable[DirectoryGroup],
    memberships: Iterable[Membership],
) -> SyncResult:
    now = timezone.now()
    upstream_identities = _dedup_identities(identities)
    upstream_groups = _dedup_groups(groups)

    # Plans and both breakers first: a refusal costs no writes.
    existing_identities = {
        _identity_key(i.provider_identifier): i
        for i in AuthIdentity.objects.filter(provider=provider).select_related("actor")
    }
    identities_gone = [i for k, i in existing_identities.items() if k not in upstream_identities]
    if deletion_refused(total=len(existing_identities), deleting=len(identities_gone)):
        raise SyncRefused(MSG_IDENTITIES_TOO_LARGE)
    existing_groups = {
        g.provider_identifier or "": g for g in ActorGroup.objects.filter(provider=provider)
    }
    groups_gone = [g for pid, g in existing_groups.items() if pid not in upstream_groups]
    if deletion_refused(total=len(existing_groups), deleting=len(groups_gone)):
        raise SyncRefused(MSG_GROUPS_TOO_LARGE)

    # §2.4 identities.
    if identities_gone:
        changes.delete(AuthIdentity.objects.filter(pk__in=[i.pk for i in identities_gone]))
    # identity key → actor id, the new ones first
    actor_of: dict[str, Any] = _insert_identities(
        provider,
        [u for k, u in upstream_identities.items() if k not in existing_identities],
        now=now,
    )
    identities_inserted = len(actor_of)
    identities_updated = _update_identities(
        {k: u for k, u in upstream_identities.items() if k in existing_identities},
        existing_identities,
        now=now,
    )
    for key in upstream_identities:
        if key in existing_identities:
            actor_of[key] = existing_identities[key].actor_id
    _everyone_memberships(provider.account_id)

    # §2.5 groups (their memberships first, in one batch: nothing depends on a membership).
    if groups_gone:
        gone_ids = [g.pk for g in groups_gone]
        _delete_memberships(ActorGroupMembership.objects.filter(group_id__in=gone_ids))
        changes.delete(ActorGroup.objects.filter(pk__in=gone_ids))
    group_of, groups_inserted, groups_updated = _upsert_groups(
        provider, upstream_groups, existing_groups, now=now
    )

    # §2.6 memberships.
    memberships_inserted, memberships_deleted = _sync_memberships(
        provider, memberships, group_of=group_of, actor_of=actor_of
    )

    return SyncResult(
        identities=len(upstream_identities),
        groups=len(upstream_groups),
        identities_inserted=identities_inserted,
        identities_updated=identities_updated,
        identities_deleted=len(identities_gone),
        groups_inserted=groups_inserted,
        groups_updated=groups_updated,
        groups_deleted=len(groups_gone),
        memberships_inserted=memberships_inserted,
        memberships_deleted=memberships_deleted,
    )


def _insert_identities(
    provider: AuthProvider, new: list[DirectoryIdentity], *, now: datetime
) -> dict[str, Any]:
    """A new `account_user` actor and an identity for each new upstream user; returns identity
    key → actor id. Batch by batch, so a first sync never holds every model instance."""
    account_id = provider.account_id
    actor_of: dict[str, Any] = {}
    for start in range(0, len(new), BATCH_SIZE):
        batch = new[start : start + BATCH_SIZE]
        actors = [
            Actor(
                account_id=account_id,
                type=Actor.Type.ACCOUNT_USER,
                name=_actor_name(u),
                last_synced_at=now,
            )
            for u in batch
        ]
        Actor.objects.bulk_create(actors)
        rows = [
            AuthIdentity(
                actor=actor,
                provider=provider,
                account_id=account_id,
                provider_identifier=u.provider_identifier.strip(),
                email=_email(u),
                provider_state=_synced_state(None, _email(u)),
                **PROVIDER_TRAIL,
            )
            for actor, u in zip(actors, batch, strict=True)
        ]
        AuthIdentity.objects.bulk_create(rows)
        changes.record_many(
            [("insert", "actors", account_id, None, changes.row_image(a)) for a in actors]
            + [("insert", "auth_identities", account_id, None, changes.row_image(i)) for i in rows]
        )
        for identity in rows:
            actor_of[_identity_key(identity.provider_identifier)] = identity.actor_id
    return actor_of


def _update_identities(
    upstream: dict[str, DirectoryIdentity],
    existing: dict[str, AuthIdentity],
    *,
    now: datetime,
) -> int:
    """Bring the e-mail and actor name of existing identities up to date; only rows that differ
    are locked, re-read and written. An actor's type and `disabled_at` are never touched."""

    def identity_stale(identity: AuthIdentity, u: DirectoryIdentity) -> bool:
        email = _email(u)
        return identity.email != email or identity.provider_state != _synced_state(
            identity.provider_state, email
        )

    def actor_stale(actor: Actor, u: DirectoryIdentity) -> bool:
        return actor.name != _actor_name(u) or actor.last_synced_at is None

    stale = [
        existing[k].pk
        for k, u in upstream.items()
        if identity_stale(existing[k], u) or actor_stale(existing[k].actor, u)
    ]
    if not stale:
        return 0
    locked = list(
        AuthIdentity.objects.filter(pk__in=stale)
        .select_related("actor")
        .select_for_update(of=("self", "actor"))
    )
    identity_rows: list[AuthIdentity] = []
    actor_rows: dict[Any, Actor] = {}
    changed: set[Any] = set()
    records: list[tuple[Any, ...]] = []
    for identity in locked:
        u = upstream[_identity_key(identity.provider_identifier)]
        if identity_stale(identity, u):
            old = changes.row_image(identity)
            identity.email = _email(u)
            identity.provider_state = _synced_state(identity.provider_state, identity.email)
            identity_rows.append(identity)
            changed.add(identity.pk)
            records.append(("update", "auth_identities", identity.account_id, old, identity))
        actor = actor_rows.get(identity.actor_id, identity.actor)
        if actor_stale(actor, u):
            old = changes.row_image(actor)
            actor.name = _actor_name(u)
            actor.last_synced_at = now
            actor.updated_at = now
            actor_rows[actor.pk] = actor
            changed.add(identity.pk)
            records.append(("update", "actors", actor.account_id, old, actor))
    AuthIdentity.objects.bulk_update(identity_rows, ["email", "provider_state"], BATCH_SIZE)
    Actor.objects.bulk_update(
        list(actor_rows.values()), ["name", "last_synced_at", "updated_at"], BATCH_SIZE
    )
    changes.record_many(
        (op, table, account_id, old, changes.row_image(row))
        for op, table, account_id, old, row in records
    )
    return len(changed)


_EVERYONE_MISSING = f"""
FROM {Actor._meta.db_table} a
JOIN {ActorGroup._meta.db_table} g ON g.account_id = a.account_id AND g.type = %s
WHERE a.account_id = %s AND a.type = ANY(%s)
"""
_EVERYONE_CHECK_SQL = f"""
SELECT EXISTS (SELECT 1 {_EVERYONE_MISSING} AND NOT EXISTS (
  SELECT 1 FROM {ActorGroupMembership._meta.db_table} m
  WHERE m.actor_id = a.id AND m.group_id = g.id
))
"""  # noqa: S608
_EVERYONE_SQL = f"""
INSERT INTO {ActorGroupMembership._meta.db_table} (id, actor_id, group_id, account_id)
SELECT gen_random_uuid(), a.id, g.id, a.account_id
FROM {Actor._meta.db_table} a
JOIN {ActorGroup._meta.db_table} g ON g.account_id = a.account_id AND g.type = %s
WHERE a.account_id = %s AND a.type = ANY(%s)
ON CONFLICT (actor_id, group_id) DO NOTHING
RETURNING id, actor_id, group_id
"""  # noqa: S608 (table names come from model metadata, values are parameters)


def _everyone_memberships(account_id: Any) -> None:
    """Every user and admin of the account in the managed groups (§2.4 "Afterwards"), recorded
    in one batch (`accounts.services.groups.everyone_memberships_update` records row by row).
    Hard deletes cascade, so there is nothing to remove; when nobody is missing, nothing is
    written."""
    params: list[Any] = [
        str(ActorGroup.Type.MANAGED),
        str(account_id),
        [str(t) for t in Actor.USER_TYPES],
    ]
    with connection.cursor() as cursor:
        cursor.execute(_EVERYONE_CHECK_SQL, params)
        if not cursor.fetchone()[0]:
            return
        cursor.execute(_EVERYONE_SQL, params)
        rows = cursor.fetchall()
    changes.record_many(
        (
            "insert",
            "actor_group_memberships",
            account_id,
            None,
            changes.row_image(
                ActorGroupMembership(
                    id=pk, actor_id=actor_id, group_id=group_id, account_id=account_id
                )
            ),
        )
        for pk, actor_id, group_id in rows
    )


def _upsert_groups(
    provider: AuthProvider,
    upstream: dict[str, DirectoryGroup],
    existing: dict[str, ActorGroup],
    *,
    now: datetime,
) -> tuple[dict[str, Any], int, int]:
    """Insert the new groups and rename the renamed ones; returns identifier → group id."""
    account_id = provider.account_id
    new: list[ActorGroup] = []
    renamed: list[tuple[dict[str, Any], ActorGroup]] = []
    group_of: dict[str, Any] = {}
    for pid, u in upstream.items():
        group = existing.get(pid)
        if group is None:
            group = ActorGroup(
                account_id=account_id,
                provider=provider,
                provider_identifier=pid,
                name=_group_name(u),
                type=ActorGroup.Type.STATIC,
                **PROVIDER_TRAIL,
            )
            new.append(group)
        elif group.name != _group_name(u):
            old = changes.row_image(group)
            group.name = _group_name(u)
            group.updated_at = now
            renamed.append((old, group))
        group_of[pid] = group.pk
    ActorGroup.objects.bulk_create(new, batch_size=BATCH_SIZE)
    ActorGroup.objects.bulk_update([g for _, g in renamed], ["name", "updated_at"], BATCH_SIZE)
    changes.record_many(
        [("insert", "actor_groups", account_id, None, changes.row_image(g)) for g in new]
        + [("update", "actor_groups", account_id, old, changes.row_image(g)) for old, g in renamed]
    )
    return group_of, len(new), len(renamed)


def _sync_memberships(
    provider: AuthProvider,
    memberships: Iterable[Membership],
    *,
    group_of: dict[str, Any],
    actor_of: dict[str, Any],
) -> tuple[int, int]:
    """Make the memberships of the provider's groups exactly the upstream pairs whose group and
    user are both known (nested groups, suspended members… are dropped)."""
    wanted: set[tuple[Any, Any]] = set()
    for group_pid, identity_pid in memberships:
        group_id = group_of.get(group_pid.strip())
        actor_id = actor_of.get(_identity_key(identity_pid))
        if group_id is not None and actor_id is not None:
            wanted.add((group_id, actor_id))
    current = {
        (group_id, actor_id): pk
        for pk, group_id, actor_id in ActorGroupMembership.objects.filter(
            group__provider=provider
        ).values_list("pk", "group_id", "actor_id")
    }
    gone = [pk for pair, pk in current.items() if pair not in wanted]
    if gone:
        _delete_memberships(ActorGroupMembership.objects.filter(pk__in=gone))
    account_id = provider.account_id
    pairs = sorted(wanted - set(current), key=str)
    # Batch by batch, so a first sync (50,000 memberships) never holds every model instance.
    for start in range(0, len(pairs), BATCH_SIZE):
        new = [
            ActorGroupMembership(group_id=group_id, actor_id=actor_id, account_id=account_id)
            for group_id, actor_id in pairs[start : start + BATCH_SIZE]
        ]
        ActorGroupMembership.objects.bulk_create(new)
        changes.record_many(
            ("insert", "actor_group_memberships", account_id, None, changes.row_image(m))
            for m in new
        )
    return len(pairs), len(gone)


def _delete_memberships(memberships: QuerySet[ActorGroupMembership]) -> int:
    """Delete memberships and record them in one batch (`changes.delete` records row by row:
    about 2 ms per row). No table references a membership, so nothing cascades: the same
    change-log rows and published changes as `changes.delete`, recorded after the delete."""
    rows = list(memberships)
    if not rows:
        return 0
    images = [changes.row_image(m) for m in rows]
    ActorGroupMembership.objects.filter(pk__in=[m.pk for m in rows]).delete()
    changes.record_many(
        ("delete", "actor_group_memberships", m.account_id, image, None)
        for m, image in zip(rows, images, strict=True)
    )
    return len(rows)
