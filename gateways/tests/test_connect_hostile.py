"""A NUL byte in a request header the device connect stores (issue 17): refused 400 "upgrade
failed" (protocol.md §2.6) before the token is touched, like daphne refuses it itself; another
ASGI server may pass it through, and PostgreSQL text cannot store it (a 500 a device would
retry forever)."""

from __future__ import annotations

import pytest

from accounts.models import Token
from accounts.request import ConnectContext
from firezone.phoenix.rejection import ConnectRejected
from gateways.connect import authenticate_client, authenticate_gateway, throttled
from gateways.tests.sockets import make_world

pytestmark = pytest.mark.django_db

UA = "iOS/12.7 (iPhone) connlib/1.3.0"


@pytest.mark.parametrize(
    "ctx",
    [
        ConnectContext(user_agent=f"{UA}\x00", remote_ip="189.172.73.153"),
        ConnectContext(user_agent=UA, remote_ip="189.172.73.153", region="Ukr\x00aine"),
        ConnectContext(user_agent=UA, remote_ip="189.172.73.153", city="\x00"),
    ],
)
def test_nul_in_a_stored_header_is_400_before_the_token_is_touched(ctx: ConnectContext) -> None:
    world = make_world()
    for authenticate_fn, params in (
        (authenticate_client, world.client_params()),
        (authenticate_gateway, world.gateway_params()),
    ):
        with pytest.raises(ConnectRejected) as refused:
            throttled(authenticate_fn, params, ctx)
        assert (refused.value.status, refused.value.body) == (400, "")
    assert not Token.objects.filter(last_seen_user_agent__isnull=False).exists()
