"""The mock directory (billing_sync_jobs.md §2.12): fake, deterministic per provider, offline."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from accounts.models import AuthProvider
from accounts.tests.factories import ProviderFactory
from directory_sync.adapters import DIRECTORIES

pytestmark = pytest.mark.django_db


def mock_provider(**config: int) -> AuthProvider:
    return ProviderFactory(
        adapter=AuthProvider.Adapter.MOCK,
        provisioner=AuthProvider.Provisioner.CUSTOM,
        adapter_config=config,
    )


def snapshot(provider: AuthProvider) -> tuple[list, list, list]:
    directory = DIRECTORIES["mock"](provider)
    return list(directory.identities()), list(directory.groups()), list(directory.memberships())


def test_shapes_and_sizes() -> None:
    identities, groups, memberships = snapshot(
        mock_provider(num_actors=30, num_groups=12, max_actors_per_group=5)
    )
    assert [i.provider_identifier for i in identities] == [f"U:{n}" for n in range(1, 31)]
    assert [g.provider_identifier for g in groups] == [f"G:{n}" for n in range(1, 13)]
    for identity in identities:
        first = identity.name.split()[0]
        assert identity.email == f"{first.lower()}@example.com"
    assert all(re.fullmatch(r"Group:\S.*", g.name) for g in groups)
    per_group = Counter(group for group, _ in memberships)
    assert set(per_group) == {g.provider_identifier for g in groups}
    assert all(1 <= n <= 5 for n in per_group.values())
    assert {member for _, member in memberships} <= {i.provider_identifier for i in identities}
    assert len(set(memberships)) == len(memberships)


def test_the_same_provider_gets_the_same_directory() -> None:
    provider = mock_provider(num_actors=50, num_groups=20, max_actors_per_group=10)
    assert snapshot(provider) == snapshot(provider)
    assert snapshot(provider) == snapshot(AuthProvider.objects.get(pk=provider.pk))
    other = mock_provider(num_actors=50, num_groups=20, max_actors_per_group=10)
    assert snapshot(other) != snapshot(provider)


def test_defaults_and_empty_sizes() -> None:
    identities, groups, memberships = snapshot(mock_provider())
    assert (len(identities), len(groups)) == (500, 2500)
    assert max(Counter(g for g, _ in memberships).values()) <= 25
    identities, groups, memberships = snapshot(
        mock_provider(num_actors=0, num_groups=3, max_actors_per_group=5)
    )
    assert (identities, len(groups), memberships) == ([], 3, [])
