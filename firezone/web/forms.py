"""What every admin-page form shares: the "can't be blank" message and putting a service's
`ValidationFailed.errors` back on the form (the services validate; forms only carry input)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from accounts.validation import MSG_BLANK

REQUIRED = {"required": MSG_BLANK}


class DomainErrorsMixin:
    """Puts a service's `ValidationFailed.errors` on the matching fields (others on the form)."""

    # service error key -> form field
    SERVICE_FIELDS: ClassVar[dict[str, str]] = {}

    def add_domain_errors(self, errors: Mapping[str, Sequence[str]]) -> None:
        for key, messages in errors.items():
            name = self.SERVICE_FIELDS.get(key, key)
            field = name if name in self.fields else None  # type: ignore[attr-defined]
            for message in messages:
                if field is None and key not in ("__all__",):
                    message = f"{key.replace('_', ' ').capitalize()} {message}"
                self.add_error(field, message)  # type: ignore[attr-defined]
