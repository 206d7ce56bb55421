"""Forms of the actor pages (portal.md §4.5): choosing a type, new user / service account,
an identity for a user, a service account token, and the edit form.

Forms check what a person can get wrong while typing (blank fields, the confirmation matching);
the services own the domain rules and their errors come back onto the fields through
`add_service_errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from django import forms
from django.utils import timezone

from accounts.models import Actor, AuthProvider
from firezone.web.forms import REQUIRED, ServiceErrorsMixin, name_field

MSG_EMAIL_MISMATCH = "email does not match"
A = AuthProvider.Adapter

ROLE_LABELS: dict[str, str] = {
    Actor.Type.ACCOUNT_USER: "User",
    Actor.Type.ACCOUNT_ADMIN_USER: "Admin",
}
ADAPTER_LABELS: dict[str, str] = {
    A.EMAIL: "Email",
    A.USERPASS: "Username & Password",
    A.OPENID_CONNECT: "OpenID Connect",
}
OIDC_EMAIL_HELP = (
    "The token `sub` claim value or userinfo `email` value. This will be used to match the user "
    "to this identity when signing in for the first time."
)
TOKEN_LIFETIME_DAYS = 365


def _name_field(placeholder: str) -> forms.CharField:
    return forms.CharField(
        label="Full Name",
        error_messages=REQUIRED,
        widget=forms.TextInput(attrs={"placeholder": placeholder, "autocomplete": "off"}),
    )


def role_choices(grantable: Sequence[str]) -> list[tuple[str, str]]:
    """The roles offered in the "Role" select, in the original's order (User, Admin)."""
    return [(t, label) for t, label in ROLE_LABELS.items() if t in grantable]


class ActorTypeForm(ServiceErrorsMixin, forms.Form):
    """Step 1 of "Add Actor": which kind of actor (the radio cards, field `next`)."""

    CHOICES: ClassVar[list[tuple[str, str]]] = [
        ("users", "User"),
        ("service_accounts", "Service Account"),
    ]
    next = forms.ChoiceField(choices=CHOICES, error_messages=REQUIRED)


class UserForm(ServiceErrorsMixin, forms.Form):
    SERVICE_FIELDS: ClassVar[dict[str, str]] = {"type": "type"}

    name = _name_field("E.g. John Smith")
    type = forms.ChoiceField(label="Role", error_messages=REQUIRED)

    def __init__(self, *args: Any, grantable: Sequence[str], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"type": Actor.Type.ACCOUNT_USER})
        super().__init__(*args, **kwargs)
        role = self.fields["type"]
        assert isinstance(role, forms.ChoiceField)
        role.choices = role_choices(grantable)


class ServiceAccountForm(ServiceErrorsMixin, forms.Form):
    name = _name_field("E.g. My Backend Service")


class ActorEditForm(ServiceErrorsMixin, forms.Form):
    """Full Name (not for synced actors: the IdP owns it) and Role (users and admins only)."""

    name = _name_field("Full Name")
    type = forms.ChoiceField(label="Role", error_messages=REQUIRED)

    def __init__(self, *args: Any, actor: Actor, grantable: Sequence[str], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"name": actor.name, "type": actor.type})
        super().__init__(*args, **kwargs)
        if actor.is_synced:
            del self.fields["name"]
        if actor.is_user:
            choices = role_choices(grantable)
            if actor.type not in dict(choices):  # keep the current role selectable
                choices.append((actor.type, ROLE_LABELS.get(actor.type, actor.type)))
            role = self.fields["type"]
            assert isinstance(role, forms.ChoiceField)
            role.choices = choices
        else:
            del self.fields["type"]


def provider_label(provider: AuthProvider) -> str:
    return f"{provider.name} ({ADAPTER_LABELS.get(provider.adapter, provider.adapter)})"


class IdentityForm(ServiceErrorsMixin, forms.Form):
    """A new identity of a user at one of `providers`; the fields follow the chosen provider's
    adapter (email: email twice; OIDC: email twice, with help; userpass: username and password
    twice). `provider` is the chosen one (the first when none was chosen)."""

    SERVICE_FIELDS: ClassVar[dict[str, str]] = {"email": "provider_identifier"}

    provider_id = forms.ChoiceField(label="Identity Provider", error_messages=REQUIRED)

    def __init__(
        self,
        *args: Any,
        providers: Sequence[AuthProvider],
        provider: AuthProvider | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.provider = provider
        provider_field = self.fields["provider_id"]
        assert isinstance(provider_field, forms.ChoiceField)
        provider_field.choices = [(str(p.pk), provider_label(p)) for p in providers]
        self.fields["provider_id"].initial = str(provider.pk) if provider else None
        self.fields["provider_id"].widget.attrs["data-identity-provider"] = ""
        adapter = provider.adapter if provider else None
        if adapter in (A.EMAIL, A.OPENID_CONNECT):
            email_help = OIDC_EMAIL_HELP if adapter == A.OPENID_CONNECT else ""
            self.fields["provider_identifier"] = forms.CharField(
                label="Email",
                error_messages=REQUIRED,
                help_text=email_help,
                widget=forms.TextInput(
                    attrs={"placeholder": "Enter an email address", "autocomplete": "off"}
                ),
            )
            self.fields["provider_identifier_confirmation"] = forms.CharField(
                label="Email Confirmation",
                error_messages=REQUIRED,
                widget=forms.TextInput(
                    attrs={"placeholder": "Enter the same email as above", "autocomplete": "off"}
                ),
            )
        elif adapter == A.USERPASS:
            self.fields["provider_identifier"] = forms.CharField(
                label="Username",
                error_messages=REQUIRED,
                widget=forms.TextInput(attrs={"autocomplete": "off"}),
            )
            self.fields["password"] = forms.CharField(
                label="Password",
                strip=False,
                error_messages=REQUIRED,
                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
            )
            self.fields["password_confirmation"] = forms.CharField(
                label="Password Confirmation",
                strip=False,
                error_messages=REQUIRED,
                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
            )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        # The service checks the confirmation of email identities only; OIDC pre-provisioning
        # asks for it too, so the form compares both.
        identifier = data.get("provider_identifier")
        confirmation = data.get("provider_identifier_confirmation")
        if identifier and confirmation and identifier.strip().lower() != confirmation.lower():
            self.add_error("provider_identifier_confirmation", MSG_EMAIL_MISMATCH)
        return data

    def service_fields(self) -> dict[str, Any]:
        """The keyword arguments of `identity_create` for this adapter."""
        data = self.cleaned_data
        fields: dict[str, Any] = {"provider_identifier": data.get("provider_identifier", "")}
        if "provider_identifier_confirmation" in self.fields:
            fields["provider_identifier_confirmation"] = data.get(
                "provider_identifier_confirmation", ""
            )
        if "password" in self.fields:
            fields["password"] = data.get("password", "")
            fields["password_confirmation"] = data.get("password_confirmation", "")
        return fields


def token_default_expiry(today: date | None = None) -> date:
    return (today or timezone.now().astimezone(UTC).date()) + timedelta(days=TOKEN_LIFETIME_DAYS)


class ServiceAccountTokenForm(ServiceErrorsMixin, forms.Form):
    """Name and expiry date of a service account token; the date means 00:00:00 UTC of that
    day, which must be in the future."""

    name = name_field(max_length=255, placeholder="Name for this token")
    expires_at = forms.DateField(
        label="Expires At",
        error_messages={**REQUIRED, "invalid": "is invalid"},
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        today = timezone.now().astimezone(UTC).date()
        kwargs.setdefault("initial", {"expires_at": token_default_expiry(today)})
        super().__init__(*args, **kwargs)
        self.fields["expires_at"].widget.attrs["min"] = today.isoformat()

    def clean_expires_at(self) -> datetime:
        day: date = self.cleaned_data["expires_at"]
        moment = datetime.combine(day, time.min, tzinfo=UTC)
        now = timezone.now()
        if moment <= now:
            raise forms.ValidationError(
                f"must be greater than {now.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC"
            )
        return moment
