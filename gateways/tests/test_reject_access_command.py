"""`manage.py reject_access` argument checks (the live path is in test_sockets_gateway_*.py)."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import CommandError, call_command

from gateways.tests.factories import GatewayFactory

pytestmark = pytest.mark.django_db


def test_refuses_non_uuids_and_unknown_gateways() -> None:
    some = str(uuid.uuid4())
    with pytest.raises(CommandError, match="client_id is not a UUID"):
        call_command("reject_access", some, "nope", some)
    with pytest.raises(CommandError, match="no gateway"):
        call_command("reject_access", some, some, some)


def test_sends_to_a_known_gateway(capsys) -> None:
    gateway = GatewayFactory()
    call_command("reject_access", str(gateway.pk), str(uuid.uuid4()), str(uuid.uuid4()))
    assert f"reject_access sent to gateway {gateway.pk}" in capsys.readouterr().out
