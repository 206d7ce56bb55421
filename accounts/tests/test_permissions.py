"""The permission matrix of domain.md §3.2, checked cell by cell."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from accounts.auth import P, Subject, can_grant_role, ensure_permissions, permissions_for
from firezone.errors import Unauthorized

ADMIN, API, USER, SA = "account_admin_user", "api_client", "account_user", "service_account"

# permission -> the actor types that hold it (a ✓ in the spec's table)
MATRIX: dict[P, set[str]] = {
    P.ACCOUNT_MANAGE_OWN: {ADMIN, API},
    P.ACTOR_MANAGE: {ADMIN, API},
    P.ACTOR_EDIT_OWN_PROFILE: {ADMIN, API, USER},
    P.ACTOR_GROUP_MANAGE: {ADMIN, API},
    P.PROVIDER_MANAGE: {ADMIN, API},
    P.IDENTITY_MANAGE: {ADMIN, API},
    P.IDENTITY_MANAGE_OWN: {ADMIN, API, USER},
    P.AUTH_MANAGE_SERVICE_ACCOUNTS: {ADMIN, API},
    P.AUTH_MANAGE_API_CLIENTS: {ADMIN},
    P.BILLING_MANAGE_OWN: {ADMIN},
    P.CLIENT_MANAGE: {ADMIN, API},
    P.CLIENT_MANAGE_OWN: {ADMIN, API, USER, SA},
    P.CLIENT_VERIFY: {ADMIN, API},
    P.GATEWAY_MANAGE: {ADMIN, API},
    P.GATEWAY_CONNECT: {ADMIN, API, USER, SA},
    P.POLICY_MANAGE: {ADMIN, API},
    P.POLICY_VIEW_AVAILABLE: {ADMIN, API, USER, SA},
    P.RELAY_MANAGE: {ADMIN},
    P.RESOURCE_MANAGE: {ADMIN, API},
    P.RESOURCE_VIEW_AVAILABLE: {ADMIN, API, USER, SA},
    P.FLOW_MANAGE: {ADMIN, API},
    P.FLOW_CREATE: {ADMIN, API, USER, SA},
    P.TOKEN_MANAGE: {ADMIN, API},
    P.TOKEN_MANAGE_OWN: {ADMIN, API, USER},
}


def _subject(actor_type: str, expires_at=None) -> Subject:
    actor = SimpleNamespace(pk=1, type=actor_type, name="A", account=SimpleNamespace(pk=1))
    return Subject.build(actor=actor, expires_at=expires_at)  # type: ignore[arg-type]  # a fake actor


def test_matrix_covers_every_permission() -> None:
    assert set(MATRIX) == set(P)


@pytest.mark.parametrize("actor_type", [ADMIN, API, USER, SA])
@pytest.mark.parametrize("permission", list(P))
def test_each_cell(actor_type: str, permission: P) -> None:
    subject = _subject(actor_type)
    if actor_type in MATRIX[permission]:
        ensure_permissions(subject, permission)
    else:
        with pytest.raises(Unauthorized) as exc:
            ensure_permissions(subject, permission)
        assert exc.value.reason == "missing_permissions"
        assert exc.value.missing == (str(permission),)


def test_counts_per_role() -> None:
    counts = {t: len(permissions_for(t)) for t in (ADMIN, API, USER, SA)}
    assert counts == {ADMIN: 24, API: 21, USER: 8, SA: 5}


def test_unknown_type_has_no_permissions() -> None:
    assert permissions_for("nobody") == frozenset()


def test_expired_subject_is_refused_even_with_the_permission() -> None:
    subject = _subject(ADMIN, expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Unauthorized) as exc:
        ensure_permissions(subject, P.ACTOR_MANAGE)
    assert exc.value.reason == "subject_expired"


def test_one_of() -> None:
    ensure_permissions(_subject(USER), one_of=[P.CLIENT_MANAGE, P.CLIENT_MANAGE_OWN])
    with pytest.raises(Unauthorized):
        ensure_permissions(_subject(SA), one_of=[P.TOKEN_MANAGE, P.TOKEN_MANAGE_OWN])


@pytest.mark.parametrize(
    ("granter", "grantable"),
    [
        (ADMIN, {ADMIN, API, USER, SA}),
        (API, {API, USER, SA}),
        (USER, {USER, SA}),
        (SA, {SA}),
    ],
)
def test_can_grant_role(granter: str, grantable: set[str]) -> None:
    subject = _subject(granter)
    assert {t for t in (ADMIN, API, USER, SA) if can_grant_role(subject, t)} == grantable
