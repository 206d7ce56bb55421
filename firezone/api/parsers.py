"""The API's JSON body parser: DRF's, refusing what PostgreSQL text cannot store.

A NUL byte (`\\u0000`) or a lone surrogate (`\\ud800`) anywhere in a body (a value or a key) is
permanent bad input: answered 400 `{"error": {"reason": "Bad Request"}}` like malformed JSON,
before any serializer or service sees it, instead of a 500 from the insert it reaches.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from firezone.jsonvalues import leaves, lone_surrogate


def unstorable_text(value: Any) -> bool:
    """Whether decoded JSON holds a string (or key) with a NUL byte or a lone surrogate."""
    return any(
        isinstance(item, str) and ("\x00" in item or lone_surrogate(item)) for item in leaves(value)
    )


class JSONBodyParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if unstorable_text(data):
            raise ParseError("NUL byte or lone surrogate in the body")
        return data
