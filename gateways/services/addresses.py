"""Tunnel address allocation for clients and gateways (domain.md §2.9).

Addresses are unique per account and never released. Allocation starts at a random offset inside
the range and walks forward, then backward, to the first address that is neither taken nor being
allocated by a concurrent transaction (transaction-scoped advisory lock per candidate), all in one
statement so an account with many addresses costs one round trip.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any, Literal

from django.db import connection

from firezone.errors import Refused
from gateways.models import NetworkAddress

AddressType = Literal["ipv4", "ipv6"]

# Allocation ranges (2^21 addresses each), inside the reserved 100.64.0.0/10 and
# fd00:2021:1111::/48.
IPV4_CIDR = "100.64.0.0/11"
IPV6_CIDR = "fd00:2021:1111::/107"
CIDRS: dict[str, str] = {"ipv4": IPV4_CIDR, "ipv6": IPV6_CIDR}

_TABLE = NetworkAddress._meta.db_table

# Candidate offsets: forward from %(offset)s to the last host, then backward down to 2 (the
# network address, +1 and the broadcast address are never used). UNION ALL of two series keeps
# that order; the series sit in the select list so they stream (in FROM they would first be
# materialised, 2^21 rows); `OFFSET 0` fences the subquery so the lock below is only tried on free
# addresses, one at a time, until LIMIT 1 is satisfied.
_PICK_SQL = f"""
SELECT host(free.address)
FROM (
    SELECT candidate.i, %(host)s::inet + candidate.i AS address
    FROM (
        SELECT generate_series(%(offset)s::bigint, %(last)s::bigint) AS i
        UNION ALL
        SELECT generate_series(%(offset)s::bigint - 1, 2, -1) AS i
    ) AS candidate
    WHERE NOT EXISTS (
        SELECT 1 FROM {_TABLE} taken
        WHERE taken.account_id = %(account_id)s
          AND taken.type = %(type)s
          AND taken.address = %(host)s::inet + candidate.i
    )
    OFFSET 0
) AS free
WHERE pg_try_advisory_xact_lock(
    '{_TABLE}'::regclass::oid::int,
    mod(hashtext(%(host)s) + free.i, 2147483647)::int
)
LIMIT 1
"""  # noqa: S608 (constant identifiers only; values are parameters)

_INSERT_SQL = f"""
INSERT INTO {_TABLE} (address, account_id, type, inserted_at)
VALUES (%(address)s::inet, %(account_id)s, %(type)s, now())
ON CONFLICT (address, account_id) DO NOTHING
RETURNING host(address)
"""  # noqa: S608 (constant identifiers only; values are parameters)

# A free candidate can still be taken by a transaction that committed after this statement's
# snapshot was taken (its lock is gone by then): the insert then does nothing and we retry.
_MAX_ATTEMPTS = 10


def no_free_addresses(type: str) -> Refused:
    return Refused(f"There are no free tunnel addresses ({type}) left.", code="no_free_addresses")


def address_allocate(*, account_id: Any, type: AddressType, cidr: str | None = None) -> str:
    """Allocate and insert a free tunnel address of `type` in the account; return it as text.

    Must run inside a transaction: the advisory locks that keep concurrent allocations apart
    last until it ends. `cidr` overrides the allocation range (tests).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("address_allocate must run inside a transaction")
    if type not in CIDRS:
        raise ValueError(f"unknown address type {type!r}")
    network = ipaddress.ip_network(cidr or CIDRS[type], strict=False)
    last = network.num_addresses - 2  # broadcast - host - 1
    if last < 2:
        raise no_free_addresses(type)
    host = str(network.network_address)
    params: dict[str, str | int] = {
        "host": host,
        "last": last,
        "account_id": str(account_id),
        "type": type,
    }
    with connection.cursor() as cursor:
        for _ in range(_MAX_ATTEMPTS):
            # secrets.randbelow: offset uniform in [2, last].
            params["offset"] = 2 + secrets.randbelow(last - 1)
            cursor.execute(_PICK_SQL, params)
            row = cursor.fetchone()
            if row is None:
                raise no_free_addresses(type)
            cursor.execute(_INSERT_SQL, {**params, "address": row[0]})
            inserted = cursor.fetchone()
            if inserted is not None:
                return inserted[0]
    raise no_free_addresses(type)
