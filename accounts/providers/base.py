"""What every identity-provider adapter declares (domain.md §1.5).

An adapter is a class of `AdapterSpec` registered in `accounts.providers`: its name (the
`AuthProvider.adapter` value), its capabilities, and how its `adapter_config` is validated.
Callers look adapters up by name instead of branching on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlparse

from django.conf import settings

MSG_BLANK = "can't be blank"
MSG_INVALID = "is invalid"
MSG_URL = "is not a valid URL"

MANUAL = "manual"  # AuthProvider.Provisioner.MANUAL
CUSTOM = "custom"  # AuthProvider.Provisioner.CUSTOM: directory sync provisions

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def url_errors(value: str) -> list[str]:
    """https only; plain http just for a loopback IdP when `OIDC_ALLOW_HTTP_LOOPBACK` is set
    (development and the browser tests' local IdP)."""
    parsed = urlparse(value)
    if not parsed.netloc:
        return [MSG_URL]
    if parsed.scheme == "https":
        return []
    loopback = parsed.scheme == "http" and (parsed.hostname or "") in _LOOPBACK_HOSTS
    if loopback and getattr(settings, "OIDC_ALLOW_HTTP_LOOPBACK", False):
        return []
    return [MSG_URL]


def text(config: Mapping[str, Any], key: str) -> str | None:
    """A config value as trimmed text; blank is None."""
    value = config.get(key)
    if isinstance(value, str):
        return value.strip() or None
    return None if value is None else str(value)


class AdapterSpec:
    """One adapter. Subclasses set the class attributes and override `clean_config`."""

    name: ClassVar[str]
    # One per account, no configuration, never the default (email, userpass).
    singleton: ClassVar[bool] = False
    # Users and groups come from the IdP's directory (one per kind per account, `custom`
    # provisioner, needs the `idp_sync` feature).
    directory_sync: ClassVar[bool] = False
    # Set up through the admin's OAuth consent at the IdP (portal.md §4.13.7).
    consent: ClassVar[bool] = False
    # Signs users in through the OpenID Connect flow (accounts.oidc).
    oidc_sign_in: ClassVar[bool] = False
    # An admin may add identities at it by hand (the others come from sign-in or sync).
    manual_identities: ClassVar[bool] = False
    # Offered for creation when `AUTH_PROVIDER_ADAPTERS` is not set.
    creatable_by_default: ClassVar[bool] = True
    # `adapter_config` keys holding secrets (the redaction rule, firezone.secrets, covers them).
    secret_config_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def provisioner(cls) -> str:
        """The one provisioner the adapter offers (§1.5)."""
        return CUSTOM if cls.directory_sync else MANUAL

    @classmethod
    def clean_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Validated, normalised `adapter_config`; raises `ValidationFailed` with errors keyed
        `adapter_config.<key>`. Without configuration by default."""
        return {}

    @classmethod
    def discovery_document_uri(cls, config: Mapping[str, Any]) -> str | None:
        """Where the OIDC discovery document is, for the adapters that sign in with OIDC: the
        configured one by default."""
        uri = config.get("discovery_document_uri")
        return uri.strip() if isinstance(uri, str) and uri.strip() else None
