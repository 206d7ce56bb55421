"""What every admin-page form shares: the "can't be blank" message and putting a service's
`ValidationFailed` errors back on the form (the services validate; forms only carry input).

`ServiceErrorsMixin` is the one mapper of service errors onto forms. Django forms get it as is;
forms with their own error lists (the policy and DNS editors) override the two hooks that say
*where* an error goes (`service_error_field`) and *how* it is kept (`put_service_error`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django import forms

from accounts.validation import MSG_BLANK
from firezone.errors import ValidationFailed

REQUIRED = {"required": MSG_BLANK}


def name_field(*, max_length: int, placeholder: str, label: str = "Name") -> forms.CharField:
    """A required name of at most `max_length` characters, with the services' wording."""
    return forms.CharField(
        label=label,
        max_length=max_length,
        error_messages={
            **REQUIRED,
            "max_length": f"should be at most {max_length} character(s)",
        },
        widget=forms.TextInput(attrs={"placeholder": placeholder, "autocomplete": "off"}),
    )


# Keys that already mean "the whole form": their messages are shown without a label.
FORM_KEYS = frozenset({"__all__", "base"})

ServiceErrors = ValidationFailed | Mapping[str, Sequence[str]]


class ServiceErrorsMixin:
    """Puts a service's `ValidationFailed.errors` (field → messages) on the form: on the field
    the key names (`SERVICE_FIELDS` renames keys), else on the form with a label ("Name is
    taken"), so a message never loses what it is about."""

    # service error key -> form field
    SERVICE_FIELDS: ClassVar[Mapping[str, str]] = {}
    # service error key -> label of its form-level message (default: the key, capitalised)
    ERROR_LABELS: ClassVar[Mapping[str, str]] = {}

    def add_service_errors(self, errors: ServiceErrors) -> None:
        if isinstance(errors, ValidationFailed):
            errors = errors.errors
        for key, messages in errors.items():
            field = self.service_error_field(key)
            for message in messages:
                text = message if field is not None else self.service_error_text(key, message)
                self.put_service_error(field, text)

    # --- hooks ------------------------------------------------------------------------------

    def service_error_field(self, key: str) -> str | None:
        """The field an error key belongs to, None for the form as a whole."""
        name = self.SERVICE_FIELDS.get(key, key)
        fields: Mapping[str, Any] = getattr(self, "fields", {})
        return name if name in fields else None

    def service_error_text(self, key: str, message: str) -> str:
        """A form-level message, labelled with what it is about."""
        if key in FORM_KEYS:
            return message
        label = self.ERROR_LABELS.get(key) or key.replace("_", " ").capitalize()
        return f"{label} {message}"

    def put_service_error(self, field: str | None, message: str) -> None:
        self.add_error(field, message)  # type: ignore[attr-defined]  # mixed into a Form


def extend_unique(target: list[str], messages: Sequence[str] | str) -> None:
    """Append messages not shown yet (forms keeping their own error lists)."""
    for message in [messages] if isinstance(messages, str) else messages:
        if message not in target:
            target.append(message)
