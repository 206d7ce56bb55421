"""The identity-provider adapters, by name (domain.md §1.5).

`adapter_spec(name)` answers what an adapter can do and validates its configuration; the
tuples below are the registry's answers for queries (`adapter__in=`) and old call sites.
Configuration is validated without network access (the original also fetched the OIDC discovery
document during validation; the sign-in flow reports a broken one instead).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from accounts.providers.base import AdapterSpec, url_errors
from accounts.providers.mock import MOCK_DEFAULTS, Mock
from accounts.providers.openid_connect import (
    GOOGLE_KEY_FIELDS,
    GoogleWorkspace,
    JumpCloud,
    MicrosoftEntra,
    Okta,
    OpenIDConnect,
    OpenIDConnectFamily,
)
from accounts.providers.system import Email, UserPass

__all__ = [
    "ADAPTERS",
    "CONSENT_ADAPTERS",
    "DEFAULT_SCOPES",
    "FIXED_DISCOVERY_URIS",
    "GOOGLE_KEY_FIELDS",
    "IDENTIFIER_CLAIMS",
    "MANUAL_IDENTITY_ADAPTERS",
    "MOCK_DEFAULTS",
    "OIDC_ADAPTERS",
    "REQUIRED_SCOPES",
    "SECRET_CONFIG_KEYS",
    "SINGLETON_ADAPTERS",
    "SYNC_ADAPTERS",
    "AdapterSpec",
    "OpenIDConnectFamily",
    "adapter_spec",
    "adapters_for_creation",
    "url_errors",
]

# In the order of `AuthProvider.Adapter`.
ADAPTERS: dict[str, type[AdapterSpec]] = {
    spec.name: spec
    for spec in (
        Email,
        OpenIDConnect,
        GoogleWorkspace,
        MicrosoftEntra,
        Okta,
        JumpCloud,
        Mock,
        UserPass,
    )
}


def adapter_spec(name: Any) -> type[AdapterSpec]:
    """The adapter called `name`; `KeyError` for an unknown one."""
    return ADAPTERS[str(name)]


def _with(capability: str) -> tuple[str, ...]:
    return tuple(name for name, spec in ADAPTERS.items() if getattr(spec, capability))


def adapters_for_creation() -> tuple[str, ...]:
    """Adapters users may create: `AUTH_PROVIDER_ADAPTERS`, by default all but userpass."""
    configured = getattr(settings, "AUTH_PROVIDER_ADAPTERS", None)
    if configured:
        return tuple(str(a) for a in configured)
    return _with("creatable_by_default")


SINGLETON_ADAPTERS = _with("singleton")
SYNC_ADAPTERS = _with("directory_sync")
CONSENT_ADAPTERS = _with("consent")
OIDC_ADAPTERS = _with("oidc_sign_in")
MANUAL_IDENTITY_ADAPTERS = _with("manual_identities")
_OIDC_FAMILY = [s for s in ADAPTERS.values() if issubclass(s, OpenIDConnectFamily)]
REQUIRED_SCOPES: dict[str, tuple[str, ...]] = {s.name: s.required_scopes for s in _OIDC_FAMILY}
DEFAULT_SCOPES: dict[str, str] = {s.name: s.scope() for s in _OIDC_FAMILY}
FIXED_DISCOVERY_URIS: dict[str, str] = {
    s.name: s.fixed_discovery_uri for s in _OIDC_FAMILY if s.fixed_discovery_uri
}
IDENTIFIER_CLAIMS: dict[str, str] = {
    s.name: s.identifier_claim for s in _OIDC_FAMILY if s.identifier_claim != "sub"
}
SECRET_CONFIG_KEYS = frozenset(k for s in ADAPTERS.values() for k in s.secret_config_keys)
