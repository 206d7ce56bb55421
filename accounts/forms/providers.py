"""Identity provider setup forms (portal.md §4.13.3, §4.13.4): one form per adapter.

A form collects what the admin types and turns it into the adapter configuration the service
validates (`provider_create` / `provider_update`); the service's errors come back onto the
fields through `add_service_errors`. Secrets (client secret, service account key) are never
filled in from the stored provider: on edit a blank secret keeps the stored one, and only what
the admin typed is shown again after an error.

The discovery document the admin points at is fetched while validating (as the original did),
so a wrong URL is reported on the field instead of at the first sign-in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from django import forms

from accounts import oidc
from accounts.models import AuthProvider
from accounts.providers import (
    DEFAULT_SCOPES,
    GOOGLE_KEY_FIELDS,
    MOCK_DEFAULTS,
    REQUIRED_SCOPES,
    url_errors,
)
from firezone.web.forms import ServiceErrorsMixin

A = AuthProvider.Adapter
MSG_BLANK = "can't be blank"
MSG_INVALID = "is invalid"
REQUIRED = {"required": MSG_BLANK}

# Adapter labels (list "Type" column, detail pages).
ADAPTER_LABELS: dict[str, str] = {
    A.EMAIL: "Email",
    A.USERPASS: "Username & Password",
    A.GOOGLE_WORKSPACE: "Google Workspace",
    A.MICROSOFT_ENTRA: "Microsoft Entra",
    A.OKTA: "Okta",
    A.JUMPCLOUD: "JumpCloud",
    A.MOCK: "Mock",
    A.OPENID_CONNECT: "OpenID Connect",
}

# Field-less service errors get a label so the base error reads as a sentence.
_BASE_LABELS = {
    "scope": "Scope",
    "response_type": "Response type",
    "discovery_document_uri": "Discovery Document URI",
    "workos_org": "WorkOS organization",
    "id": "Provider ID",
    "provisioner": "Provisioner",
}


def discovery_errors(uri: str) -> list[str]:
    """Fetch the discovery document; the original's messages when that fails (§3.8)."""
    try:
        oidc.discovery_document(uri)
    except oidc.IdPUnreachable as exc:
        reason = exc.reason
        if reason == "http_404":
            return ["does not exist"]
        if reason.startswith("http_"):
            return [f"is invalid, got {reason[5:]} HTTP response"]
        if reason in ("InvalidURL", "MissingSchema", "InvalidSchema", "LocationParseError"):
            return ["invalid URL"]
        if reason in ("not_a_json_object", "incomplete_discovery_document") or reason.endswith(
            "DecodeError"
        ):
            return ["is invalid, unable to parse response"]
        return [f"is invalid, got {reason}"]
    return []


class ProviderForm(ServiceErrorsMixin, forms.Form):
    """Common part: the provider name (and, on creation, the pre-generated provider id)."""

    adapter: ClassVar[str]
    default_name: ClassVar[str]
    # Fields holding secrets: left blank on edit they keep the stored value.
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # Service error keys (`adapter_config.<key>`) shown on another field of this form.
    error_fields: ClassVar[dict[str, str]] = {}

    id = forms.UUIDField(widget=forms.HiddenInput, required=False)
    name = forms.CharField(
        label="Name",
        max_length=255,
        error_messages={**REQUIRED, "max_length": "should be at most 255 character(s)"},
        help_text=(
            "A human-friendly name for this identity provider. This will be displayed to end-users."
        ),
    )

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, provider: AuthProvider | None = None
    ) -> None:
        self.provider = provider
        initial: dict[str, Any] = {}
        if provider is None:
            initial = {"id": uuid.uuid4(), "name": self.default_name}
        else:
            initial = {"name": provider.name, **self.initial_config(provider.adapter_config or {})}
        super().__init__(data, initial=initial)
        if provider is not None:
            del self.fields["id"]
            for name in self.secret_fields:
                field = self.fields[name]
                field.required = False
                field.help_text = "Leave blank to keep the current value."

    @property
    def editing(self) -> bool:
        return self.provider is not None

    @property
    def provider_id(self) -> str:
        """The provider id the redirect URLs are computed with."""
        if self.provider is not None:
            return str(self.provider.pk)
        value = self.data.get("id") if self.is_bound else None
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            return str(self.initial["id"])

    def clean_id(self) -> uuid.UUID | None:
        # Required on creation, but a missing one is just generated (no field to show it on).
        return self.cleaned_data.get("id") or (None if self.editing else uuid.uuid4())

    def initial_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Form values from a stored configuration (never secrets)."""
        return {}

    def config_values(self) -> dict[str, Any]:
        """The adapter configuration typed in this form (valid forms only)."""
        return {}

    def adapter_config(self) -> dict[str, Any]:
        """The configuration to save: the stored one (on edit) with what was typed on top;
        blank secrets keep their stored value."""
        stored = dict(self.provider.adapter_config or {}) if self.provider else {}
        values = self.config_values()
        for name in self.secret_fields:
            if values.get(name) in (None, ""):
                values.pop(name, None)
        return {**stored, **values}

    # --- service errors (ServiceErrorsMixin hooks) ------------------------------------------

    def service_error_field(self, key: str) -> str | None:
        """`adapter_config.<key>` errors go on the visible input of that key, if any."""
        short = key.removeprefix("adapter_config.")
        target = self.error_fields.get(short, short)
        if target in self.fields and not isinstance(self.fields[target].widget, forms.HiddenInput):
            return target
        return None

    def service_error_text(self, key: str, message: str) -> str:
        label = _BASE_LABELS.get(key.removeprefix("adapter_config."))
        return f"{label} {message}" if label else message


# --- OpenID Connect family ---------------------------------------------------------------------


def _discovery_field(placeholder: str) -> forms.CharField:
    return forms.CharField(
        label="Discovery Document URI",
        max_length=2000,
        error_messages=REQUIRED,
        help_text="The URI to the OpenID Connect discovery document for your identity provider.",
        widget=forms.TextInput(attrs={"placeholder": placeholder, "autocomplete": "off"}),
    )


class OIDCFamilyForm(ProviderForm):
    """Name, client id and secret, plus the hidden `response_type` and `scope`."""

    secret_fields: ClassVar[tuple[str, ...]] = ("client_secret",)
    # The adapter's discovery document when the admin does not type one.
    fixed_discovery_uri: ClassVar[str | None] = None

    response_type = forms.CharField(widget=forms.HiddenInput, required=False, initial="code")
    scope = forms.CharField(widget=forms.HiddenInput, required=False)
    client_id = forms.CharField(
        label="Client ID",
        max_length=2000,
        error_messages=REQUIRED,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    client_secret = forms.CharField(
        label="Client secret",
        max_length=2000,
        error_messages=REQUIRED,
        # Shows back only what was typed in this submission (masked), never the stored secret.
        widget=forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.editing:
            self.initial.setdefault("scope", DEFAULT_SCOPES[self.adapter])
            self.initial.setdefault("response_type", "code")

    @property
    def scopes(self) -> tuple[str, ...]:
        """What the admin must grant the application at the IdP (step 1)."""
        if self.adapter == A.OPENID_CONNECT:
            return ("openid", "email", "profile")
        return REQUIRED_SCOPES[self.adapter]

    def initial_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "client_id": config.get("client_id", ""),
            "scope": config.get("scope", ""),
            "response_type": config.get("response_type", "code"),
            "discovery_document_uri": config.get("discovery_document_uri", ""),
        }

    def discovery_uri(self) -> tuple[str, str] | None:
        """(field name, URI) of a discovery document the admin typed, to be fetched."""
        if "discovery_document_uri" in self.fields:
            uri = (self.cleaned_data.get("discovery_document_uri") or "").strip()
            return ("discovery_document_uri", uri) if uri else None
        return None

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        typed = self.discovery_uri()
        if typed is not None and not self.errors:
            field, uri = typed
            problems = url_errors(uri) or discovery_errors(uri)
            for message in problems:
                self.add_error(field, message)
        return cleaned

    def config_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        values: dict[str, Any] = {
            "client_id": data["client_id"],
            "client_secret": data.get("client_secret") or "",
            "scope": data.get("scope") or DEFAULT_SCOPES[self.adapter],
            "response_type": data.get("response_type") or "code",
        }
        if "discovery_document_uri" in self.fields:
            values["discovery_document_uri"] = data["discovery_document_uri"]
        elif self.fixed_discovery_uri:
            values["discovery_document_uri"] = self.fixed_discovery_uri
        return values


class OpenIDConnectForm(OIDCFamilyForm):
    adapter = A.OPENID_CONNECT
    default_name = "OpenID Connect"
    discovery_document_uri = _discovery_field(
        "https://example.com/.well-known/openid-configuration"
    )


class MicrosoftEntraForm(OIDCFamilyForm):
    adapter = A.MICROSOFT_ENTRA
    default_name = "Microsoft Entra"
    discovery_document_uri = _discovery_field(
        "https://login.microsoftonline.com/<azure-tenant-id>/v2.0/.well-known/openid-configuration"
    )


class JumpCloudForm(OIDCFamilyForm):
    adapter = A.JUMPCLOUD
    default_name = "JumpCloud"
    fixed_discovery_uri = oidc.FIXED_DISCOVERY_URIS[A.JUMPCLOUD]


class OktaForm(OIDCFamilyForm):
    adapter = A.OKTA
    default_name = "Okta"
    error_fields = {"api_base_url": "okta_account_domain"}

    okta_account_domain = forms.CharField(
        label="Okta Account Domain",
        max_length=255,
        error_messages=REQUIRED,
        help_text="Your Okta account domain.",
        widget=forms.TextInput(attrs={"placeholder": "<company>.okta.com", "autocomplete": "off"}),
    )

    def initial_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **super().initial_config(config),
            "okta_account_domain": config.get("okta_account_domain", ""),
        }

    def clean_okta_account_domain(self) -> str:
        # Accept a pasted URL: only the host is kept.
        value = self.cleaned_data["okta_account_domain"].strip()
        value = value.removeprefix("https://").removeprefix("http://")
        return value.split("/", 1)[0].strip()

    @property
    def well_known_url(self) -> str:
        """The read-only discovery URL derived from the domain ("" until there is one)."""
        domain = (
            self.data.get("okta_account_domain", "")
            if self.is_bound
            else self.initial.get("okta_account_domain", "")
        )
        domain = str(domain or "").strip().removeprefix("https://").split("/", 1)[0]
        return f"https://{domain}/.well-known/openid-configuration" if domain else ""

    def discovery_uri(self) -> tuple[str, str] | None:
        domain = self.cleaned_data.get("okta_account_domain")
        if not domain:
            return None
        return ("okta_account_domain", f"https://{domain}/.well-known/openid-configuration")

    def config_values(self) -> dict[str, Any]:
        domain = self.cleaned_data["okta_account_domain"]
        return {
            **super().config_values(),
            "okta_account_domain": domain,
            "api_base_url": f"https://{domain}",
            "discovery_document_uri": f"https://{domain}/.well-known/openid-configuration",
        }


class GoogleWorkspaceForm(OIDCFamilyForm):
    adapter = A.GOOGLE_WORKSPACE
    default_name = "Google Workspace"
    secret_fields = ("client_secret", "service_account_json_key")
    fixed_discovery_uri = oidc.FIXED_DISCOVERY_URIS[A.GOOGLE_WORKSPACE]

    service_account_json_key = forms.CharField(
        label="Service Account JSON Key",
        max_length=20000,
        error_messages=REQUIRED,
        widget=forms.Textarea(
            attrs={
                "rows": 8,
                "placeholder": '{"type":"service_account","project_id":...}',
                "autocomplete": "off",
                "spellcheck": "false",
            }
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["client_id"].help_text = "The Client ID from Step 5."

    def clean_service_account_json_key(self) -> dict[str, Any] | None:
        raw = (self.cleaned_data.get("service_account_json_key") or "").strip()
        if not raw:
            return None
        try:
            key = json.loads(raw)
        except ValueError:
            raise forms.ValidationError(MSG_INVALID) from None
        if not isinstance(key, dict):
            raise forms.ValidationError(MSG_INVALID)
        absent = [name for name in GOOGLE_KEY_FIELDS if not key.get(name)]
        if absent:
            raise forms.ValidationError(f"is missing {', '.join(absent)}")
        return key

    def config_values(self) -> dict[str, Any]:
        return {
            **super().config_values(),
            "service_account_json_key": self.cleaned_data.get("service_account_json_key"),
        }


# --- Mock -----------------------------------------------------------------------------------------


def _count_field(label: str, default: int) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        min_value=0,
        max_value=1_000_000,
        initial=default,
        error_messages={
            **REQUIRED,
            "invalid": MSG_INVALID,
            "min_value": "must be greater than or equal to 0",
            "max_value": "must be less than or equal to 1000000",
        },
    )


class MockForm(ProviderForm):
    adapter = A.MOCK
    default_name = "Mock"

    num_actors = _count_field("Number of actors", MOCK_DEFAULTS["num_actors"])
    num_groups = _count_field("Number of groups", MOCK_DEFAULTS["num_groups"])
    max_actors_per_group = _count_field(
        "Max actors per group", MOCK_DEFAULTS["max_actors_per_group"]
    )

    def initial_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {key: config.get(key, default) for key, default in MOCK_DEFAULTS.items()}

    def config_values(self) -> dict[str, Any]:
        return {key: self.cleaned_data[key] for key in MOCK_DEFAULTS}


FORMS: dict[str, type[ProviderForm]] = {
    form.adapter: form
    for form in (
        OpenIDConnectForm,
        GoogleWorkspaceForm,
        MicrosoftEntraForm,
        OktaForm,
        JumpCloudForm,
        MockForm,
    )
}
