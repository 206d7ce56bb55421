"""Every API error as the body of portal.md §5.1: `{"error": {"reason": "..."}}`.

| raised                                        | status | reason                               |
|-----------------------------------------------|--------|--------------------------------------|
| no/bad token, domain `Unauthorized`           | 401    | Unauthorized (or the domain reason)  |
| domain `NotFound`, Http404 (unknown id,       | 404    | Not Found                            |
| malformed id, another account's id)           |        |                                      |
| `ValidationFailed`, serializer errors         | 422    | Unprocessable Entity + the fields'   |
|                                               |        | `validation_errors`                  |
| `Refused` (last admin, ...)                   | 422    | the domain's message                 |
| `LimitReached` (plan limits)                  | 422    | its short reason ("Seat Limit ...")  |
| malformed JSON, missing body wrapper          | 400    | Bad Request                          |
| unreadable `page_cursor`                      | 400    | Invalid cursor                       |
| rate limit                                    | 429    | Too Many Requests (+ Retry-After: 1) |

The original answered several domain refusals with a 500 (§5.2 "[Ambiguous]"); here a domain
error is never a 500. Anything else is a real bug: Django's 500 (`internal_error` body).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from firezone.errors import (
    DomainError,
    LimitReached,
    NotFound,
    Refused,
    Unauthorized,
    ValidationFailed,
)

UNPROCESSABLE = "Unprocessable Entity"
# Domain `Unauthorized` reasons the original reports as such (§5.1); others are "Unauthorized".
DOMAIN_REASONS = frozenset({"missing_permissions", "subject_expired"})


class BadRequest(drf.APIException):
    """The body lacks its wrapper key (`{"resource": {...}}`) or is not a JSON object."""

    status_code = 400
    default_detail = "Bad Request"


class InvalidCursor(drf.APIException):
    status_code = 400
    default_detail = "Invalid cursor"


def error_body(reason: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"reason": reason, **extra}}


def json_error(status: int, reason: str | None = None) -> JsonResponse:
    """A §5.1 error outside DRF (unknown paths, 500s of the API URL conf)."""
    return JsonResponse(error_body(reason or HTTPStatus(status).phrase), status=status)


def nested_errors(errors: Mapping[str, Any]) -> dict[str, Any]:
    """Domain field errors as the original's shape: `__all__` is `base`, dotted keys nest
    (`filters.0.ports` → `{"filters": {"0": {"ports": [...]}}}`)."""
    result: dict[str, Any] = {}
    for key, messages in errors.items():
        path = ["base" if key == "__all__" else key] if "." not in key else key.split(".")
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {} if child is None else {"base": child}
            node = child
        node[path[-1]] = list(messages)
    return result


def _domain_response(exc: DomainError) -> Response:
    if isinstance(exc, NotFound):
        return Response(error_body("Not Found"), status=404)
    if isinstance(exc, Unauthorized):
        reason = exc.reason if exc.reason in DOMAIN_REASONS else "Unauthorized"
        return Response(error_body(reason), status=401)
    if isinstance(exc, ValidationFailed):
        body = error_body(UNPROCESSABLE, validation_errors=nested_errors(exc.errors))
        return Response(body, status=422)
    if isinstance(exc, LimitReached):
        return Response(error_body(exc.reason), status=422)
    if isinstance(exc, Refused):
        return Response(error_body(exc.message), status=422)
    return Response(error_body(UNPROCESSABLE), status=422)


def _api_response(exc: drf.APIException) -> Response:
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        headers = {"WWW-Authenticate": "Bearer"}
        return Response(error_body("Unauthorized"), status=401, headers=headers)
    if isinstance(exc, drf.Throttled):
        return Response(error_body("Too Many Requests"), status=429, headers={"Retry-After": "1"})
    if isinstance(exc, drf.ValidationError):
        body = error_body(UNPROCESSABLE, validation_errors=exc.detail)
        return Response(body, status=422)
    if isinstance(exc, drf.ParseError):
        return Response(error_body("Bad Request"), status=400)
    if isinstance(exc, BadRequest | InvalidCursor):
        return Response(error_body(str(exc.detail)), status=exc.status_code)
    return Response(error_body(HTTPStatus(exc.status_code).phrase), status=exc.status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER; None lets anything unexpected become Django's 500."""
    if isinstance(exc, DomainError):
        response = _domain_response(exc)
    elif isinstance(exc, Http404):
        response = Response(error_body("Not Found"), status=404)
    elif isinstance(exc, PermissionDenied):  # Django's: DRF's own handler maps it too
        response = Response(error_body("Forbidden"), status=403)
    elif isinstance(exc, drf.APIException):
        response = _api_response(exc)
    else:
        return None
    set_rollback()
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler404 of the API URL conf, and its catch-all route."""
    return json_error(404)


def server_error(request: HttpRequest) -> JsonResponse:
    return json_error(500, "internal_error")
