"""The sign-up form (portal.md §3.14): field names and messages as in the original."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django import forms

from accounts import validation
from accounts.services.actors import clean_actor_name
from accounts.services.identities import email_errors
from firezone.errors import ValidationFailed
from firezone.web.forms import ServiceErrorsMixin
from resources.services.sign_up import MSG_DOMAIN_NOT_ALLOWED, email_domain_allowed

MSG_BLANK = validation.MSG_BLANK


class SignUpForm(ServiceErrorsMixin, forms.Form):
    """Work Email, Company Name, Your Name. The original's hidden `account[slug]` and
    `actor[type]` inputs are rendered for parity but never read (§9 item 24)."""

    email = forms.CharField(required=False)
    account_name = forms.CharField(required=False)
    actor_name = forms.CharField(required=False)

    # Form field -> HTML input name (what the page posts).
    HTML_NAMES: Mapping[str, str] = {
        "email": "registration[email]",
        "account_name": "registration[account][name]",
        "actor_name": "registration[actor][name]",
    }
    # Form field -> element id of the input (its errors live in "<id>-errors").
    INPUT_IDS: Mapping[str, str] = {
        "email": "registration_email",
        "account_name": "registration_account_name",
        "actor_name": "registration_actor_name",
    }
    # Field names of the sign-up service's ValidationFailed -> form field.
    SERVICE_FIELDS: ClassVar[Mapping[str, str]] = {
        "admin_email": "email",
        "name": "account_name",
        "legal_name": "account_name",
        "admin_name": "actor_name",
    }

    def add_prefix(self, field_name: str) -> str:
        return self.HTML_NAMES.get(field_name, field_name)

    @classmethod
    def field_for_html_name(cls, html_name: str | None) -> str | None:
        return next((f for f, n in cls.HTML_NAMES.items() if n == html_name), None)

    def clean_email(self) -> str:
        email: str = self.cleaned_data.get("email") or ""
        if messages := email_errors(email):
            raise forms.ValidationError(messages)
        if not email_domain_allowed(email):
            raise forms.ValidationError(MSG_DOMAIN_NOT_ALLOWED)
        return email

    def clean_account_name(self) -> str:
        name: str = self.cleaned_data.get("account_name") or ""
        if not name.strip():
            raise forms.ValidationError(MSG_BLANK)
        try:
            return validation.clean_name(name)
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.errors.get("name", [validation.MSG_INVALID])) from exc

    def clean_actor_name(self) -> str:
        try:
            return clean_actor_name(self.cleaned_data.get("actor_name") or "")
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.errors.get("name", [validation.MSG_INVALID])) from exc

    def service_error_field(self, key: str) -> str | None:
        # Only the renamed keys have an input; anything else is about the sign-up as a whole.
        return self.SERVICE_FIELDS.get(key)

    def service_error_text(self, key: str, message: str) -> str:
        return message

    def field_errors(self, field: str) -> list[Any]:
        return list(self.errors.get(field, [])) if self.is_bound else []
