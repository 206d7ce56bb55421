"""The change-log catch-up (`firezone.catchup`): the missing-detection of a hub's `Ledger` (grace,
advance), and `read_log` against the real database after real service writes."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from django.db import connection, transaction

from accounts.tests.factories import AccountFactory, ActorFactory, GroupFactory, subject_for
from firezone import changes
from firezone.catchup import (
    Catchup,
    Ledger,
    Snapshot,
    account_end,
    read_log,
    relay_end,
    token_end,
)
from firezone.models import ChangeLog
from resources.services import policies as policy_svc
from resources.tests.factories import PolicyFactory, ResourceFactory

# --- Ledger (pure) --------------------------------------------------------------------------------

LOADED = Snapshot.parse("100:105:102")  # 102 was in progress at the load


def test_a_transaction_the_stream_delivered_is_not_missing_and_the_ledger_advances() -> None:
    ledger = Ledger(LOADED)
    ledger.note_applied(106)
    now = Snapshot.parse("107:107:")
    assert ledger.check({106}, now) == frozenset()
    assert ledger.known == now
    assert ledger.suspects == frozenset()
    assert ledger.applied == set()  # known through the snapshot from now on


def test_an_unapplied_transaction_is_a_suspect_first_then_missing() -> None:
    ledger = Ledger(LOADED)
    first = Snapshot.parse("107:107:")
    assert ledger.check({105, 106}, first) == frozenset()  # grace: may be in flight
    assert ledger.suspects == {105, 106}
    ledger.note_applied(106)  # its message arrived after the poll
    assert ledger.check(set(), Snapshot.parse("108:108:")) == frozenset({105})
    assert ledger.known == first  # not advanced past a missing transaction


def test_a_suspect_applied_before_the_next_poll_is_not_missing() -> None:
    ledger = Ledger(LOADED)
    assert ledger.check({105}, Snapshot.parse("106:106:")) == frozenset()
    ledger.note_applied(105)
    assert ledger.check(set(), Snapshot.parse("108:108:")) == frozenset()
    assert ledger.suspects == frozenset()
    assert ledger.known == Snapshot.parse("108:108:")


def test_a_transaction_in_progress_at_the_load_is_checked_once_committed() -> None:
    ledger = Ledger(LOADED)
    assert not LOADED.contains(102)
    assert ledger.check({102}, Snapshot.parse("105:106:")) == frozenset()
    assert ledger.check(set(), Snapshot.parse("106:106:")) == frozenset({102})


def test_transactions_the_load_saw_are_never_missing() -> None:
    ledger = Ledger(LOADED)
    assert ledger.check({99, 101, 104}, Snapshot.parse("106:106:")) == frozenset()
    assert ledger.check(set(), Snapshot.parse("107:107:")) == frozenset()


def test_applied_transactions_after_the_polls_snapshot_are_kept() -> None:
    ledger = Ledger(LOADED)
    ledger.note_applied(106)
    ledger.note_applied(109)  # committed after the poll's snapshot was taken
    ledger.note_applied(None)  # a message without a transaction: nothing to track
    assert ledger.check({106}, Snapshot.parse("107:108:")) == frozenset()
    assert ledger.applied == {109}
    # The next poll sees it committed: applied, so neither suspect nor missing.
    assert ledger.check({109}, Snapshot.parse("110:110:")) == frozenset()
    assert ledger.suspects == frozenset()


# --- read_log (real database) ---------------------------------------------------------------------


def _snapshot() -> Snapshot:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_snapshot()::text")
        return Snapshot.parse(cursor.fetchone()[0])


def _xids(account_id) -> set[int]:
    return set(ChangeLog.objects.filter(account_id=account_id).values_list("xid", flat=True))


@pytest.mark.django_db(transaction=True)
def test_read_log_lists_streamed_transactions_past_the_snapshot_and_token_deletions() -> None:
    account, other = AccountFactory(), AccountFactory()
    admin = ActorFactory(account=account, admin=True)
    policy = PolicyFactory(
        account=account,
        actor_group=GroupFactory(account=account),
        resource=ResourceFactory(account=account),
    )
    before = _snapshot()
    old = _xids(account.pk)

    policy_svc.policy_disable(subject=subject_for(admin), policy=policy)
    disabled = _xids(account.pk) - old
    with transaction.atomic():  # a row logged but never streamed, and a token deletion
        changes.record(op="insert", table="flows", account_id=account.pk, new={"id": "f"})
        token_id = uuid.uuid4()  # only the log row matters here
        changes.record(
            op="delete", table="tokens", account_id=account.pk, old={"id": str(token_id)},
            publish=False,
        )  # fmt: skip
    unstreamed = _xids(account.pk) - old - disabled
    assert len(disabled) == 1 and len(unstreamed) == 1

    poll = read_log([(str(account.pk), before), (str(other.pk), before)], before)
    assert poll.committed[str(account.pk)] >= disabled
    assert not poll.committed[str(account.pk)] & unstreamed  # flows inserts, token deletes
    assert str(other.pk) not in poll.committed
    assert poll.revoked == [str(token_id)]
    assert poll.snapshot.contains(next(iter(disabled)))

    # From the poll's snapshot on, nothing is new; the same transaction listed as in progress
    # (a snapshot's xip) is found by its id.
    assert read_log([(str(account.pk), poll.snapshot)], poll.snapshot).committed == {}
    xid = next(iter(disabled))
    in_progress = Snapshot(xid, poll.snapshot.xmax, frozenset({xid}))
    again = read_log([(str(account.pk), in_progress)], in_progress)
    assert again.committed == {str(account.pk): {xid}}


@pytest.mark.django_db(transaction=True)
def test_read_log_lists_accounts_disabled_since_the_snapshot() -> None:
    from accounts.services.accounts import account_disable, account_update_system

    account, renamed = AccountFactory(), AccountFactory()
    before = _snapshot()
    account_disable(account=account, reason="test")
    account_update_system(account=renamed, name="Renamed")
    account_disable(account=account, reason="again")  # already disabled: not a new end
    relay_id = uuid.uuid4()
    changes.record(op="delete", table="relays", account_id=None, old={"id": str(relay_id)})
    poll = read_log([], before)
    assert poll.disabled == [str(account.pk)]
    assert poll.relays_deleted == [str(relay_id)]
    assert poll.revoked == []
    assert poll.ends == [account_end(account.pk), relay_end(relay_id)]


@pytest.mark.django_db(transaction=True)
def test_the_first_poll_looks_back_for_token_deletions_by_time() -> None:
    from django.utils import timezone

    token_id = uuid.uuid4()
    since = timezone.now()
    changes.record(
        op="delete", table="tokens", account_id=None, old={"id": str(token_id)}, publish=False
    )
    assert read_log([], since).revoked == [str(token_id)]
    assert read_log([], timezone.now()).revoked == []


# --- session ends (the registry, pure) ------------------------------------------------------------


async def test_session_ends_close_each_socket_once_and_refuse_late_registrations() -> None:
    catchup = Catchup(asyncio.get_running_loop())
    closed: list[str] = []

    def closer(name: str):
        async def close() -> None:
            closed.append(name)

        return close

    a_ends = [token_end("t1"), account_end("acc")]
    b_ends = [token_end("t2"), account_end("acc")]
    assert catchup.add_session("a", closer("a"), a_ends)
    assert catchup.add_session("b", closer("b"), b_ends)
    try:
        # Both ends of `a` in one poll: closed once.
        await catchup._end_sessions([token_end("t1"), account_end("acc")])
        assert sorted(closed) == ["a", "b"]
        # A socket registering just after its end was seen is refused (the caller closes it).
        assert not catchup.add_session("c", closer("c"), [token_end("t1")])
        assert not catchup.add_session("d", closer("d"), [token_end("t3"), account_end("acc")])
        # The sockets unregister as they close; what is left is theirs only.
        catchup.remove_session("a", a_ends)
        catchup.remove_session("b", b_ends)
        assert catchup.sessions == {}
        assert catchup.idle
    finally:
        assert catchup.task is not None
        catchup.task.cancel()
