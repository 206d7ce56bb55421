"""Bearer authentication with API-client tokens (portal.md §5.1).

`Authorization: Bearer <token>` goes through the token module like every other token
(`authenticate`: signature, type `api_client`, expiry, an enabled actor, last-seen recorded).
The request's `Subject` is `request.auth`; views pass it to services and selectors, which check
the permissions. A missing or bad token is the same 401 whatever the cause.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.auth import Subject
from accounts.models import Actor, Token
from accounts.services.tokens import authenticate
from firezone.errors import DomainError
from firezone.web.session import request_context

KEYWORD = "bearer"


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Actor, Subject] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != KEYWORD:
            return None  # no credentials: `HasSubject` answers 401
        encoded = encoded.strip()
        if not encoded:
            raise AuthenticationFailed()
        context = request_context(request._request, Token.Type.API_CLIENT)
        try:
            subject = authenticate(encoded, context=context)
        except DomainError as exc:  # invalid, expired, revoked, disabled actor, ...
            raise AuthenticationFailed() from exc
        return subject.actor, subject

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to unauthenticated requests.
        return "Bearer"


class HasSubject(BasePermission):
    """Every endpoint needs an authenticated API client; the domain checks the rest."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Subject)


def subject_of(request: Request) -> Subject:
    """The authenticated subject (`HasSubject` ran before any handler)."""
    subject = request.auth
    assert isinstance(subject, Subject)
    return subject


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """/openapi: the bearer scheme of `BearerTokenAuthentication`."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API client token."}
