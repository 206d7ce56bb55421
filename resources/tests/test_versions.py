"""Version adaptation of resources for older peers (domain.md §2.12)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from resources.models import Resource
from resources.versions import adapt_resource_for_version


def _dns(address: str) -> Resource:
    return Resource(type="dns", address=address, name="r", ip_stack="dual")


@pytest.mark.parametrize(
    ("address", "version", "expected"),
    [
        ("**.example.com", "1.2.0", "**.example.com"),
        ("app.f??.example.com", "1.4.3", "app.f??.example.com"),
        ("**.example.com", "1.1.9", "*.example.com"),
        ("*.example.com", "1.1.0", "?.example.com"),
        ("example.com", "1.0.0", "example.com"),
        ("app.*.example.com", "1.1.0", None),
        ("**.web.**.example.com", "1.1.0", None),
        ("app.f??.example.com", "1.1.0", None),
        ("*?*.example.com", "1.1.0", None),
    ],
)
def test_dns_wildcards(address, version, expected):
    resource = _dns(address)
    adapted = adapt_resource_for_version(resource, version)
    if expected is None:
        assert adapted is None
    else:
        assert adapted is not None and adapted.address == expected
    assert resource.address == address  # never mutated


@pytest.mark.parametrize(
    ("version", "kept"),
    [("1.2.9", False), ("1.3.0-rc.1", False), ("1.3.0", True), ("2.0.1+build.5", True)],
)
def test_internet_resource_needs_1_3(version, kept):
    internet = Resource(type="internet", name="Internet")
    assert (adapt_resource_for_version(internet, version) is internet) is kept


def test_ip_and_cidr_unchanged_for_old_versions_and_other_shapes():
    cidr = SimpleNamespace(type="cidr", address="10.0.0.0/8")
    assert adapt_resource_for_version(cidr, "1.0.0") is cidr
    as_dict = {"type": "dns", "address": "**.corp.io"}
    assert adapt_resource_for_version(as_dict, "1.1.0") == {"type": "dns", "address": "*.corp.io"}


@pytest.mark.parametrize("version", [None, "", "garbage", "1", "2.0"])
def test_unparseable_version_drops(version):
    assert adapt_resource_for_version(_dns("a.io"), version) is None
