"""Walking decoded JSON at the boundaries (device frames, API bodies) without recursion: a deeply
nested value from a device or a script cannot exhaust the stack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def leaves(value: Any) -> Iterator[Any]:
    """Every scalar of a decoded JSON value, object keys included."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            yield item


def lone_surrogate(text: str) -> bool:
    """Whether a string holds a lone surrogate (`"\\ud800"` decodes to one; it is not UTF-8)."""
    if text.isascii():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False
