"""The name rule shared by actors, groups and providers."""

from __future__ import annotations

from typing import Any

from firezone.errors import ValidationFailed

MSG_BLANK = "can't be blank"
NAME_MAX_LENGTH = 255  # the column size (the original's 512 for actors overflowed, §8.1)


def clean_display_name(name: Any) -> str:
    """Trimmed, 1-255 characters; ValidationFailed on `name` otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed({"name": [MSG_BLANK]})
    name = name.strip()
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed({"name": [f"should be at most {NAME_MAX_LENGTH} character(s)"]})
    return name
