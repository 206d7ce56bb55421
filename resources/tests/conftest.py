"""Fixtures of the resources tests: the live daphne harness (browser tests over daphne)."""

from tests.live import live, live_daphne, pytest_runtest_makereport  # noqa: F401
from tests.portal_browser import portal_server  # noqa: F401
