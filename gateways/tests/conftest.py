"""Fixtures of the gateways tests: the live daphne harness of the socket conformance tests."""

import pytest

from tests.live import live, live_daphne, pytest_runtest_makereport  # noqa: F401
from tests.portal_browser import portal_server  # noqa: F401

# The helper modules shared by split test modules keep pytest's assertion messages.
pytest.register_assert_rewrite(
    "gateways.tests._fuzz_world",
    "gateways.tests._hub_model",
    "gateways.tests._hub_reload",
    "gateways.tests._sockets_client",
    "gateways.tests._sockets_gateway",
    "gateways.tests._wire",
)
