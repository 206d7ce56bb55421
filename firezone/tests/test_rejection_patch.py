"""The daphne/autobahn adjustments installed with the Phoenix layer."""

from __future__ import annotations

import pprint

from autobahn.websocket import protocol as autobahn_protocol

from firezone.phoenix import rejection


def test_autobahn_config_dump_is_only_formatted_when_logged() -> None:
    rejection.install()
    config = [("openHandshakeTimeout", 5, "Factory"), ("autoPingInterval", 25, "Factory")]
    lazy = autobahn_protocol.pformat(config)
    assert not isinstance(lazy, str)  # nothing formatted yet
    assert str(lazy) == f"{lazy}" == pprint.pformat(config)
