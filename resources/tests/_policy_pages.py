"""Shared fixtures and helpers of the policy page tests (test_views_policies_*.py): an admin of
`acme` signed in with the Django test client, the form data and the condition panels' values.

Import the fixtures a module needs under their `*_fixture` names (they are registered under the
plain names):
`from resources.tests._policy_pages import acme_fixture, client_fixture  # noqa: F401`.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.tests.portal import UA, Acme, inject_session, make_acme

DUPLICATE = "Policy for the selected Group and Resource already exists"


@pytest.fixture(name="acme")
def acme_fixture() -> Acme:
    return make_acme()


@pytest.fixture(name="client")
def client_fixture(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _text(response: Any) -> str:
    return response.content.decode()


def _post_data(group: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "policy[actor_group_id]": str(group.pk) if group else "",
        "policy[resource_id]": str(resource.pk) if resource else "",
        "policy[description]": "",
    }
    data.update(extra)
    return data


LOCATION = "policy[conditions][remote_ip_location_region]"

IP = "policy[conditions][remote_ip]"

PROVIDER = "policy[conditions][provider_id]"

VERIFIED = "policy[conditions][client_verified]"

TIME = "policy[conditions][current_utc_datetime]"
