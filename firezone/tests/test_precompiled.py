"""`Precompiled` gives the same instances as the queryset it was built from."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Token
from accounts.tests.factories import AccountFactory, ActorFactory, IdentityFactory
from firezone.precompiled import Precompiled

pytestmark = pytest.mark.django_db


def _build(token_id, kind):
    return (
        Token.objects.filter(pk=token_id, type=kind)
        .select_related("actor__account", "identity__provider")
        .order_by("pk")[:1]
    )


def _token() -> Token:
    account = AccountFactory(config={"clients_upstream_dns": [{"protocol": "ip_port"}]})
    actor = ActorFactory(account=account)
    identity = IdentityFactory(actor=actor, account=account)
    from accounts.services.tokens import token_create

    return token_create(type="client", account=account, actor=actor, identity=identity).token


def test_same_rows_and_related_objects_as_the_orm_in_one_query() -> None:
    token = _token()
    compiled = Precompiled(_build, uuid.UUID(int=1), "type-sentinel")
    with CaptureQueriesContext(connection) as queries:
        found = compiled.first(token.pk, "client")
        assert found is not None
        # related rows came with it, converted (JSON, UUIDs, datetimes) like the ORM's
        expected = _build(token.pk, "client").first()
        assert len(queries) == 2
    assert found.pk == expected.pk and found.expires_at == expected.expires_at
    assert found.actor.account.config == expected.actor.account.config
    assert found.identity.provider.pk == expected.identity.provider.pk
    assert compiled.first(uuid.uuid4(), "client") is None
    assert compiled.first(token.pk, "browser") is None


def test_a_value_that_is_not_a_sentinel_is_refused() -> None:
    compiled = Precompiled(lambda token_id: Token.objects.filter(pk=token_id, type="client"), None)
    with pytest.raises(ValueError, match="sentinel"):
        compiled.first(uuid.uuid4())
