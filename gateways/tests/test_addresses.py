"""Tunnel address allocation (domain.md §2.9): inside the range, never reserved, never reused."""

from __future__ import annotations

import ipaddress
import threading
import time

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tests.factories import AccountFactory
from firezone.errors import Refused
from gateways.models import NetworkAddress
from gateways.services import addresses
from gateways.services.addresses import address_allocate

pytestmark = pytest.mark.django_db


def _allocate(account, type="ipv4", cidr=None) -> str:
    with transaction.atomic():
        return address_allocate(account_id=account.pk, type=type, cidr=cidr)


def _usable(cidr: str) -> set[str]:
    network = ipaddress.ip_network(cidr)
    first = network.network_address
    return {str(first + i) for i in range(2, network.num_addresses - 1)}


def test_default_ranges() -> None:
    account = AccountFactory()
    ipv4, ipv6 = _allocate(account, "ipv4"), _allocate(account, "ipv6")
    assert ipaddress.ip_address(ipv4) in ipaddress.ip_network("100.64.0.0/11")
    assert ipaddress.ip_address(ipv6) in ipaddress.ip_network("fd00:2021:1111::/107")
    assert set(NetworkAddress.objects.values_list("address", "type")) == {
        (ipv4, "ipv4"),
        (ipv6, "ipv6"),
    }


@pytest.mark.django_db(transaction=True)
def test_must_run_in_a_transaction() -> None:
    account = AccountFactory()
    assert not connection.in_atomic_block
    with pytest.raises(RuntimeError):
        address_allocate(account_id=account.pk, type="ipv4")


def test_tiny_range_is_exhausted_then_refused_and_accounts_are_independent() -> None:
    account, other = AccountFactory(), AccountFactory()
    cidr = "10.9.0.0/29"  # 8 addresses: .0 network, .1 reserved, .7 broadcast
    allocated = {_allocate(account, cidr=cidr) for _ in range(5)}
    assert allocated == {f"10.9.0.{i}" for i in range(2, 7)}
    with pytest.raises(Refused) as excinfo:
        _allocate(account, cidr=cidr)
    assert excinfo.value.code == "no_free_addresses"
    assert NetworkAddress.objects.filter(account=account).count() == 5
    # The same addresses are free in another account.
    assert _allocate(other, cidr=cidr) in allocated


def test_module_range_can_be_overridden(monkeypatch) -> None:
    monkeypatch.setitem(addresses.CIDRS, "ipv6", "fd00:2021:1111::/126")
    account = AccountFactory()
    assert _allocate(account, "ipv6") == "fd00:2021:1111::2"
    with pytest.raises(Refused):
        _allocate(account, "ipv6")


@pytest.mark.parametrize("cidr", ["10.0.0.0/31", "10.0.0.0/32"])
def test_ranges_without_usable_addresses(cidr) -> None:
    with pytest.raises(Refused):
        _allocate(AccountFactory(), cidr=cidr)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.integers(min_value=27, max_value=30),
    count=st.integers(min_value=1, max_value=40),
    ipv6=st.booleans(),
)
def test_allocations_stay_in_range_and_skip_reserved(prefix: int, count: int, ipv6: bool) -> None:
    cidr = f"fd00:2021:1111::/{prefix + 96}" if ipv6 else f"100.64.0.0/{prefix}"
    usable = _usable(cidr)
    account = AccountFactory()
    allocated = []
    for _ in range(count):
        try:
            allocated.append(_allocate(account, "ipv6" if ipv6 else "ipv4", cidr=cidr))
        except Refused:
            break
    assert len(allocated) == len(set(allocated)) == min(count, len(usable))
    assert set(allocated) <= usable


def test_allocation_finds_the_only_free_address_of_a_nearly_full_range() -> None:
    """One statement probes the whole range (speed is measured in bench/, not here)."""
    account = AccountFactory()
    cidr = "10.20.0.0/16"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO gateways_networkaddress (address, account_id, type, inserted_at) "
            "SELECT '10.20.0.0'::inet + i, %s, 'ipv4', now() "
            "FROM generate_series(2, 65534) AS i WHERE i <> 40000",
            [str(account.pk)],
        )
    assert _allocate(account, cidr=cidr) == str(ipaddress.ip_address("10.20.0.0") + 40000)
    with pytest.raises(Refused):
        _allocate(account, cidr=cidr)


@pytest.mark.django_db(transaction=True)
def test_concurrent_allocations_never_collide() -> None:
    account = AccountFactory()
    cidr = "10.30.0.0/27"  # 29 usable addresses for 6 threads x 4 allocations
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            for _ in range(4):
                with transaction.atomic():
                    address = address_allocate(account_id=account.pk, type="ipv4", cidr=cidr)
                    time.sleep(0.01)  # hold the lock a while: others must skip this address
                with lock:
                    results.append(address)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == len(set(results)) == 24
    assert set(results) <= _usable(cidr)
    assert NetworkAddress.objects.filter(account=account).count() == 24
