"""Sign-in parameters carried through every step (portal.md §3.3).

Only `as`, `state`, `nonce` and `redirect_to` travel through the sign-in pages, IdP round-trips,
email links and error redirects; empty values are dropped. `as` is a Python keyword, so the
attribute is `as_` and the query key stays `as`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest

KEYS = ("as", "state", "nonce", "redirect_to")
# Generous bounds: a client nonce is at most 128 characters; anything longer is dropped rather
# than carried through cookies and URLs.
MAX_LENGTH = {"as": 16, "state": 1024, "nonce": 128, "redirect_to": 2048}


def _clean(key: str, value: Any) -> str | None:
    if not isinstance(value, str) or value == "" or len(value) > MAX_LENGTH[key]:
        return None
    return value


@dataclass(frozen=True)
class SignInParams:
    as_: str | None = None
    state: str | None = None
    nonce: str | None = None
    redirect_to: str | None = None

    @classmethod
    def from_request(cls, request: HttpRequest) -> SignInParams:
        """From the query string and, for POST, the form (form values win)."""
        values: dict[str, str | None] = {}
        for key in KEYS:
            value = None
            if request.method == "POST":
                value = _clean(key, request.POST.get(key))
            if value is None:
                value = _clean(key, request.GET.get(key))
            values[key] = value
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, data: Any) -> SignInParams:
        """From a dict with query keys (`as`, ...), e.g. one stored in a cookie."""
        if not isinstance(data, dict):
            return cls()
        clean = {key: _clean(key, data.get(key)) for key in KEYS}
        return cls(
            as_=clean["as"],
            state=clean["state"],
            nonce=clean["nonce"],
            redirect_to=clean["redirect_to"],
        )

    def as_dict(self) -> dict[str, str]:
        """Non-empty params keyed like the query string (`as`, not `as_`)."""
        values = asdict(self)
        values["as"] = values.pop("as_")
        return {key: values[key] for key in KEYS if values.get(key)}

    def query(self) -> str:
        """URL-encoded params (no leading "?"); "" when there are none."""
        return urlencode(self.as_dict())

    def url(self, path: str, **extra: str) -> str:
        """`path` with these params (and `extra` ones) as its query string."""
        query = urlencode({**self.as_dict(), **{k: v for k, v in extra.items() if v}})
        return f"{path}?{query}" if query else path

    def without_redirect(self) -> SignInParams:
        return SignInParams(as_=self.as_, state=self.state, nonce=self.nonce)

    @property
    def is_client(self) -> bool:
        return self.as_ == "client"

    @property
    def context_type(self) -> str:
        """The token type a sign-in with these params produces: `client` or `browser`."""
        return "client" if self.is_client else "browser"

    @property
    def hidden_fields(self) -> list[tuple[str, str]]:
        """For templates: `{% for name, value in params.hidden_fields %}<input type=hidden>`."""
        return list(self.as_dict().items())
