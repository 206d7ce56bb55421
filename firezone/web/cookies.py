"""Flow cookies: the secrets of a flow that leaves the portal and comes back (an IdP's redirect,
a sign-in email's link) wait in the browser in a signed cookie, one per provider.

The cookie is signed with a salt bound to the provider (one provider's cookie is worthless under
another's name), HttpOnly, SameSite=Lax (it must survive the top-level redirect back) and short
lived; `read` answers None for anything missing, tampered with, expired or not carrying `keys`
as strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class FlowCookie:
    prefix: str  # the cookie is `<prefix><provider id>`
    salt_prefix: str  # signed with the salt `<salt_prefix><provider id>`
    keys: tuple[str, ...]  # string values every good payload carries
    max_age: int = 30 * 60

    def name(self, provider_id: Any) -> str:
        return f"{self.prefix}{provider_id}"

    def salt(self, provider_id: Any) -> str:
        return f"{self.salt_prefix}{provider_id}"

    def set(self, response: HttpResponse, provider_id: Any, payload: dict[str, Any]) -> None:
        response.set_cookie(
            self.name(provider_id),
            signing.dumps(payload, salt=self.salt(provider_id), compress=True),
            max_age=self.max_age,
            secure=bool(settings.SESSION_COOKIE_SECURE),
            httponly=True,
            samesite="Lax",
        )

    def read(self, request: HttpRequest, provider_id: Any) -> dict[str, Any] | None:
        raw = request.COOKIES.get(self.name(provider_id))
        if not raw:
            return None
        try:
            data = signing.loads(raw, salt=self.salt(provider_id), max_age=self.max_age)
        except signing.BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in self.keys):
            return None
        return data

    def delete(self, response: HttpResponse, provider_id: Any) -> None:
        response.delete_cookie(self.name(provider_id), samesite="Lax")
