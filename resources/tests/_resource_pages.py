"""Shared fixtures and helpers of the resource page tests (test_views_resources_*.py): an admin of
`acme` signed in with the Django test client, features, resources and the form data.

Import the fixtures a module needs under their `*_fixture` names (they are registered under the
plain names):
`from resources.tests._resource_pages import acme_fixture, client_fixture  # noqa: F401`.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.tests.portal import UA, Acme, inject_session, make_acme
from resources.models import Resource
from resources.services.resources import resource_create_internet
from resources.tests.factories import (
    ConnectionFactory,
    ResourceFactory,
    SiteFactory,
)


@pytest.fixture(name="acme")
def acme_fixture() -> Acme:
    return make_acme()


@pytest.fixture(name="client")
def client_fixture(acme: Acme) -> Client:
    c = Client(HTTP_USER_AGENT=UA)
    inject_session(c, acme.admin_identity)
    return c


def _features(acme: Acme, **flags: bool) -> None:
    acme.account.features = {**acme.account.features, **flags}
    acme.account.save()


def _resource(acme: Acme, *sites: Any, **kwargs: Any) -> Resource:
    resource = ResourceFactory(account=acme.account, **kwargs)
    for site in sites:
        ConnectionFactory(resource=resource, gateway_group=site, account=acme.account)
    return resource


def _internet(acme: Acme) -> Resource:
    site = SiteFactory(account=acme.account, internet=True)
    return resource_create_internet(account=acme.account, site=site)


def _form(**fields: Any) -> dict[str, Any]:
    data = {
        "resource[type]": "dns",
        "resource[address]": "gitlab.company.com",
        "resource[address_description]": "",
        "resource[name]": "gitlab.company.com",
        "resource[ip_stack]": "dual",
    }
    for key, value in fields.items():
        name = {
            "tcp": "resource[filters][tcp][enabled]",
            "tcp_ports": "resource[filters][tcp][ports]",
            "udp": "resource[filters][udp][enabled]",
            "udp_ports": "resource[filters][udp][ports]",
            "icmp": "resource[filters][icmp][enabled]",
            "connections": "resource[connections][]",
        }.get(key, f"resource[{key}]")
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def _flash(response: Any) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]
