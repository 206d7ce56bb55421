"""Fixtures of the gateways tests: the live daphne harness of the socket conformance tests."""

from tests.live import live, live_daphne, pytest_runtest_makereport  # noqa: F401
from tests.portal_browser import portal_server  # noqa: F401
