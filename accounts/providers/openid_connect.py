"""The OpenID Connect family: plain OIDC and the IdPs with directory sync (domain.md §1.5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from accounts.providers.base import MSG_BLANK, MSG_INVALID, AdapterSpec, text, url_errors
from firezone.errors import ValidationFailed

# Sign-in scopes every directory-sync adapter asks for, before its directory scopes.
_SIGN_IN_SCOPES = ("openid", "email", "profile")
_GOOGLE_SCOPE_BASE = "https://www.googleapis.com/auth/admin.directory."
GOOGLE_KEY_FIELDS = (
    "type",
    "project_id",
    "private_key_id",
    "private_key",
    "client_email",
    "client_id",
    "auth_uri",
    "token_uri",
    "auth_provider_x509_cert_url",
    "client_x509_cert_url",
    "universe_domain",
)

Errors = dict[str, list[str]]
Config = Mapping[str, Any]


class OpenIDConnectFamily(AdapterSpec):
    """Client credentials, a discovery document, a scope with `required_scopes`."""

    consent = True
    oidc_sign_in = True
    secret_config_keys: ClassVar[tuple[str, ...]] = ("client_secret",)
    # Scopes `scope` must contain; the default scope is all of them unless `default_scope`.
    required_scopes: ClassVar[tuple[str, ...]]
    default_scope: ClassVar[str | None] = None
    # The IdP's own discovery document, used at sign-in when the config names none.
    fixed_discovery_uri: ClassVar[str | None] = None
    # Whether validation fills a blank `discovery_document_uri` with `fixed_discovery_uri`
    # (only Google's did; JumpCloud's form always sends it).
    fills_discovery_uri: ClassVar[bool] = False
    # The ID-token claim naming the user at the IdP (the identity's provider_identifier).
    identifier_claim: ClassVar[str] = "sub"

    @classmethod
    def scope(cls) -> str:
        return cls.default_scope or " ".join(cls.required_scopes)

    @classmethod
    def discovery_document_uri(cls, config: Mapping[str, Any]) -> str | None:
        return super().discovery_document_uri(config) or cls.fixed_discovery_uri

    @classmethod
    def clean_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: Errors = {}
        cleaned = {
            key: value
            for key, value in config.items()
            if key not in ("client_id", "client_secret", "discovery_document_uri", "scope")
        }
        for key in ("client_id", "client_secret"):
            cleaned[key] = text(config, key)
            if not cleaned[key]:
                errors[f"adapter_config.{key}"] = [MSG_BLANK]
        uri = text(config, "discovery_document_uri") or (
            cls.fixed_discovery_uri if cls.fills_discovery_uri else None
        )
        cleaned["discovery_document_uri"] = uri
        if not uri:
            errors["adapter_config.discovery_document_uri"] = [MSG_BLANK]
        elif bad_uri := url_errors(uri):
            errors["adapter_config.discovery_document_uri"] = bad_uri
        scope = text(config, "scope") or cls.scope()
        cleaned["scope"] = scope
        missing = [s for s in cls.required_scopes if s not in scope.split()]
        if missing:
            errors["adapter_config.scope"] = [f"must include {' '.join(missing)}"]
        response_type = text(config, "response_type") or "code"
        cleaned["response_type"] = response_type
        if response_type != "code":
            errors["adapter_config.response_type"] = [MSG_INVALID]
        cls.clean_extra(config, cleaned, errors)
        if errors:
            raise ValidationFailed(errors)
        return cleaned

    @classmethod
    def clean_extra(cls, config: Config, cleaned: dict[str, Any], errors: Errors) -> None:
        """The adapter's own keys: update `cleaned` and `errors` in place."""


class OpenIDConnect(OpenIDConnectFamily):
    name = "openid_connect"
    manual_identities = True
    required_scopes = ("openid",)
    default_scope = "openid email profile"


class GoogleWorkspace(OpenIDConnectFamily):
    name = "google_workspace"
    directory_sync = True
    secret_config_keys = ("client_secret", "service_account_json_key")
    required_scopes = (
        *_SIGN_IN_SCOPES,
        _GOOGLE_SCOPE_BASE + "customer.readonly",
        _GOOGLE_SCOPE_BASE + "orgunit.readonly",
        _GOOGLE_SCOPE_BASE + "group.readonly",
        _GOOGLE_SCOPE_BASE + "user.readonly",
    )
    fixed_discovery_uri = "https://accounts.google.com/.well-known/openid-configuration"
    fills_discovery_uri = True

    @classmethod
    def clean_extra(cls, config: Config, cleaned: dict[str, Any], errors: Errors) -> None:
        key = config.get("service_account_json_key")
        if not isinstance(key, Mapping):
            errors["adapter_config.service_account_json_key"] = [MSG_BLANK]
            return
        absent = [f for f in GOOGLE_KEY_FIELDS if not key.get(f)]
        if absent:
            errors["adapter_config.service_account_json_key"] = [f"is missing {', '.join(absent)}"]


class MicrosoftEntra(OpenIDConnectFamily):
    name = "microsoft_entra"
    directory_sync = True
    required_scopes = (
        *_SIGN_IN_SCOPES,
        "offline_access",
        "Group.Read.All",
        "GroupMember.Read.All",
        "User.Read",
        "User.Read.All",
    )
    identifier_claim = "oid"


class Okta(OpenIDConnectFamily):
    name = "okta"
    directory_sync = True
    required_scopes = (
        *_SIGN_IN_SCOPES,
        "offline_access",
        "okta.groups.read",
        "okta.users.read",
    )

    @classmethod
    def discovery_document_uri(cls, config: Mapping[str, Any]) -> str | None:
        uri = super().discovery_document_uri(config)
        if uri is None and config.get("okta_account_domain"):
            return f"https://{config['okta_account_domain']}/.well-known/openid-configuration"
        return uri

    @classmethod
    def clean_extra(cls, config: Config, cleaned: dict[str, Any], errors: Errors) -> None:
        for key in ("okta_account_domain", "api_base_url"):
            cleaned[key] = text(config, key)
            if not cleaned[key]:
                errors[f"adapter_config.{key}"] = [MSG_BLANK]
        if cleaned["api_base_url"] and (bad_url := url_errors(cleaned["api_base_url"])):
            errors["adapter_config.api_base_url"] = bad_url


class JumpCloud(OpenIDConnectFamily):
    name = "jumpcloud"
    directory_sync = True
    required_scopes = _SIGN_IN_SCOPES
    fixed_discovery_uri = "https://oauth.id.jumpcloud.com/.well-known/openid-configuration"

    @classmethod
    def clean_extra(cls, config: Config, cleaned: dict[str, Any], errors: Errors) -> None:
        workos_org = config.get("workos_org")
        if workos_org is not None and not isinstance(workos_org, Mapping):
            errors["adapter_config.workos_org"] = [MSG_INVALID]
