"""Forms of the API client pages (portal.md §4.12): the client's name and a new API token."""

from __future__ import annotations

from django import forms

from accounts.forms.actors import ServiceAccountTokenForm
from accounts.services._names import NAME_MAX_LENGTH
from firezone.web.forms import REQUIRED, ServiceErrorsMixin

NAME_HELP = "Describe what this API client will be used for. This can be changed later if needed."


class ApiClientForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=NAME_MAX_LENGTH,
        error_messages={
            **REQUIRED,
            "max_length": f"should be at most {NAME_MAX_LENGTH} character(s)",
        },
        widget=forms.TextInput(
            attrs={"placeholder": "E.g. 'GitHub Actions' or 'Terraform'", "autocomplete": "off"}
        ),
    )


class ApiTokenForm(ServiceAccountTokenForm):
    """Like a service account token: an optional name and an expiry day in the future
    (default a year from today)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        name = self.fields["name"]
        name.required = False
        name.widget.attrs["placeholder"] = "Name for this token (optional)"

    def clean_name(self) -> str | None:
        return (self.cleaned_data.get("name") or "").strip() or None
