"""The adapter registry (accounts.providers) against the model and the redaction rule."""

from __future__ import annotations

import pytest
from django.db.models import UniqueConstraint

from accounts import providers
from accounts.models import AuthProvider


def test_every_adapter_is_registered_once() -> None:
    assert list(providers.ADAPTERS) == list(AuthProvider.Adapter.values)


def _condition_adapters(name: str) -> set[str]:
    constraint = next(c for c in AuthProvider._meta.constraints if c.name == name)
    assert isinstance(constraint, UniqueConstraint) and constraint.condition is not None
    lookups = [child for child in constraint.condition.children if isinstance(child, tuple)]
    return {value for _, values in lookups for value in values}


def test_the_unique_indexes_follow_the_capabilities() -> None:
    singleton = _condition_adapters("auth_providers_account_id_adapter_index")
    assert singleton == set(providers.SINGLETON_ADAPTERS)
    assert _condition_adapters("unique_account_adapter_index") == set(providers.SYNC_ADAPTERS)


@pytest.mark.parametrize("name", list(providers.ADAPTERS))
def test_one_provisioner_per_adapter(name: str) -> None:
    spec = providers.adapter_spec(name)
    expected = "custom" if name in AuthProvider.SYNC_ADAPTERS else "manual"
    assert spec.provisioner() == expected
    assert expected in AuthProvider.Provisioner.values


def test_unknown_adapter() -> None:
    with pytest.raises(KeyError):
        providers.adapter_spec("ldap")
