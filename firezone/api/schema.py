"""/openapi helpers: the §5.1 envelopes and error bodies as named schema components, so each
endpoint's `extend_schema` says only what it returns."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers


class ErrorReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()
    validation_errors = serializers.DictField(required=False)


class ErrorSerializer(serializers.Serializer):
    error = ErrorReasonSerializer()


class MetadataSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    limit = serializers.IntegerField()
    next_page = serializers.CharField(allow_null=True)
    prev_page = serializers.CharField(allow_null=True)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


ERRORS: dict[int, Any] = {
    401: _error("Missing, invalid, expired or revoked token"),
    429: _error("Too many requests (Retry-After: 1)"),
}
NOT_FOUND: dict[int, Any] = {404: _error("Unknown id, malformed id or another account's")}
INVALID: dict[int, Any] = {
    400: _error("Body without its wrapper key"),
    422: _error("Validation errors or a refusal of the domain"),
}
INVALID_CURSOR: dict[int, Any] = {400: _error("Invalid cursor")}


# Query parameters of every list (firezone.api.pagination).
PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit", int, description="Items per page: 1 to 100, default 50.", required=False
    ),
    OpenApiParameter(
        "page_cursor",
        str,
        description="`next_page` or `prev_page` of a previous page's metadata.",
        required=False,
    ),
]

# One serializer per component name: drf-spectacular warns about two classes of the same name.
_inline: dict[str, Any] = {}


def _component(name: str, fields: dict[str, Any]) -> Any:
    if name not in _inline:
        _inline[name] = inline_serializer(name=name, fields=fields)
    return _inline[name]


def one(name: str, serializer: serializers.Serializer) -> Any:
    """`{"data": <object>}`."""
    return _component(f"{name}Response", {"data": serializer})


def many(name: str, serializer: type[serializers.Serializer]) -> Any:
    """`{"data": [<object>...], "metadata": {...}}`."""
    return _component(
        f"{name}ListResponse",
        {"data": serializer(many=True), "metadata": MetadataSerializer()},
    )


def wrapped(name: str, wrapper: str, serializer: serializers.Serializer) -> Any:
    """A request body `{"<wrapper>": {...}}`."""
    return _component(f"{name}Request", {wrapper: serializer})
