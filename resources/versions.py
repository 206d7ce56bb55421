"""Adapting resources for older clients and gateways (domain.md §2.12 "version adaptation").

Pure functions: the client and gateway channels call `adapt_resource_for_version` before sending a
resource to a peer that announced `version` (e.g. "1.1.5").
"""

from __future__ import annotations

import dataclasses
from copy import copy
from typing import Any, Final, TypeVar

from firezone.versions import release_key, version_key

R = TypeVar("R")

# Semantic-version keys (pre-releases sort before their release, as in Elixir's Version).
WILDCARD_SYNTAX_SINCE: Final = release_key("1.2.0")  # `**` and `?` wildcards
INTERNET_RESOURCE_SINCE: Final = release_key("1.3.0")


def _legacy_dns_address(address: str) -> str | None:
    """Rewrite the new wildcard syntax to the pre-1.2 one, or None if it cannot be expressed."""
    if address.startswith("**"):
        head, rest = "*", address[2:]
    elif address.startswith("*"):
        head, rest = "?", address[1:]
    else:
        head, rest = "", address
    if "*" in rest or "?" in rest:
        return None
    return head + rest


def _with_address(resource: R, address: str) -> R:
    if dataclasses.is_dataclass(resource) and not isinstance(resource, type):
        return dataclasses.replace(resource, address=address)
    if isinstance(resource, dict):
        return {**resource, "address": address}  # type: ignore[return-value]  # R is this dict
    adapted: Any = copy(resource)  # a model instance: never saved, the caller only serialises it
    adapted.address = address
    return adapted


def _get(resource: Any, name: str) -> Any:
    return resource.get(name) if isinstance(resource, dict) else getattr(resource, name)


def adapt_resource_for_version(resource: R, version: str | None) -> R | None:
    """The resource as a peer of `version` can understand it, or None to leave it out.

    * the Internet resource is dropped below 1.3.0;
    * from 1.2.0 on, everything else is sent unchanged;
    * older peers get DNS wildcards rewritten: a leading `**` becomes `*`, a leading `*` becomes
      `?`; any other `*`, `**` or `?` cannot be expressed and drops the resource.
    An unparseable version is treated as unable to understand anything (None).
    `resource` may be a model instance (copied, never mutated), a dataclass or a dict.
    """
    parsed = version_key(version)
    if parsed is None:
        return None
    resource_type = _get(resource, "type")
    if resource_type == "internet":
        return resource if parsed >= INTERNET_RESOURCE_SINCE else None
    if parsed >= WILDCARD_SYNTAX_SINCE or resource_type != "dns":
        return resource
    address = _get(resource, "address") or ""
    legacy = _legacy_dns_address(address)
    if legacy is None:
        return None
    return resource if legacy == address else _with_address(resource, legacy)
