"""Fixtures of the accounts tests: the live daphne harness (the `/live` socket tests)."""

import pytest

from tests.live import live, live_daphne, pytest_runtest_makereport  # noqa: F401
from tests.portal_browser import portal_server  # noqa: F401

# The helper modules shared by split test modules keep pytest's assertion messages.
pytest.register_assert_rewrite("accounts.tests._identity_providers", "accounts.tests._oidc")
