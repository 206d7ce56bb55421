"""REST API: the access explainer (issue 18), over `resources.explain.access_explain_for`.

    GET /actors/<id>/access?resource_id=…[&at&client_id&location&remote_ip&provider_id&verified]

Why the actor can or cannot reach the resource, with each policy's conditions checked against
the context (defaults: now, the actor's most recently seen client). Ids of another account (or
malformed ones) are 404s; a missing `resource_id` or a malformed parameter is a 422.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from firezone.addresses import parse_ip
from firezone.api.authentication import subject_of
from firezone.api.schema import ERRORS, INVALID, NOT_FOUND, one
from firezone.api.views import ApiView, data
from firezone.errors import ValidationFailed
from resources.conditions import COUNTRY_CODES
from resources.explain import Explanation, access_explain_for


class ConditionCheckOut(serializers.Serializer):
    property = serializers.CharField()
    operator = serializers.CharField()
    values = serializers.ListField(child=serializers.CharField())
    passed = serializers.BooleanField()
    evaluated_against = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True)


class PolicyCheckOut(serializers.Serializer):
    policy_id = serializers.UUIDField()
    description = serializers.CharField(allow_null=True)
    group_id = serializers.UUIDField()
    group_name = serializers.CharField()
    disabled = serializers.BooleanField()
    member = serializers.BooleanField()
    membership = serializers.CharField(allow_null=True)
    conditions = ConditionCheckOut(many=True)
    grants = serializers.BooleanField()
    expires_at = serializers.DateTimeField(allow_null=True)


class SiteCheckOut(serializers.Serializer):
    site_id = serializers.UUIDField()
    site_name = serializers.CharField()
    online_gateways = serializers.IntegerField()
    compatible_gateways = serializers.IntegerField()
    chosen_gateway_id = serializers.UUIDField(allow_null=True)
    chosen_gateway_name = serializers.CharField(allow_null=True)


class AccessContextOut(serializers.Serializer):
    at = serializers.DateTimeField()
    client_id = serializers.UUIDField(allow_null=True)
    location = serializers.CharField(allow_null=True)
    remote_ip = serializers.CharField(allow_null=True)
    provider_id = serializers.UUIDField(allow_null=True)
    verified = serializers.BooleanField()
    version = serializers.CharField(allow_null=True)


class ExplanationOut(serializers.Serializer):
    actor_id = serializers.UUIDField()
    resource_id = serializers.UUIDField()
    allowed = serializers.BooleanField(help_text="A policy grants it now and a gateway is online.")
    authorized = serializers.BooleanField(help_text="A policy grants it now (gateways aside).")
    reason = serializers.CharField(allow_null=True, help_text="Why not, when not allowed.")
    expires_at = serializers.DateTimeField(allow_null=True)
    granting_policy_id = serializers.SerializerMethodField()
    chosen_gateway_id = serializers.UUIDField(allow_null=True)
    policies = PolicyCheckOut(many=True)
    sites = SiteCheckOut(many=True)
    context = AccessContextOut()

    def get_granting_policy_id(self, explanation: Explanation) -> str | None:
        policy = explanation.granting_policy
        return str(policy.policy_id) if policy is not None else None


MIN_AT: Final = datetime(1900, 1, 1, tzinfo=UTC)
MAX_AT: Final = datetime(9000, 1, 1, tzinfo=UTC)


def _param(name: str, kind: Any, description: str, required: bool = False) -> OpenApiParameter:
    return OpenApiParameter(name, kind, description=description, required=required)


PARAMETERS = [
    _param("resource_id", str, "The resource to explain.", required=True),
    _param("at", str, "ISO 8601 instant (default now; without an offset: UTC)."),
    _param("client_id", str, "One of the actor's clients (default: the most recently seen)."),
    _param("location", str, "Country code the request comes from (default: the client's)."),
    _param("remote_ip", str, "Address the request comes from (default: the client's)."),
    _param("provider_id", str, "Identity provider signed in with (default: the client's)."),
    _param("verified", bool, "Whether the client is verified (default: the client's)."),
]


def _arguments(query: Any) -> dict[str, Any]:
    """The explainer's keyword arguments from the query string; ValidationFailed (422) for
    malformed values. Ids are passed on as given: unknown or malformed ones are 404s."""
    errors: dict[str, list[str]] = {}
    arguments: dict[str, Any] = {}
    resource_id = (query.get("resource_id") or "").strip()
    if not resource_id:
        errors["resource_id"] = ["can't be blank"]
    arguments["resource"] = resource_id
    if (at := (query.get("at") or "").strip()) != "":
        try:
            parsed = parse_datetime(at)
        except ValueError:
            parsed = None
        if parsed is not None and timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=UTC)
        if parsed is None:
            errors["at"] = ["is not an ISO 8601 date and time"]
        elif not MIN_AT <= parsed <= MAX_AT:  # time zones and flow expiries must not overflow
            errors["at"] = ["must be between the years 1900 and 9000"]
        else:
            arguments["at"] = parsed
    if client_id := (query.get("client_id") or "").strip():
        arguments["client"] = client_id
    if location := (query.get("location") or "").strip():
        if location.upper() not in COUNTRY_CODES:
            errors["location"] = ["is not a valid country code"]
        arguments["location"] = location.upper()
    if remote_ip := (query.get("remote_ip") or "").strip():
        try:
            arguments["remote_ip"] = str(parse_ip(remote_ip))
        except ValueError:
            errors["remote_ip"] = ["is not a valid IP address"]
    if provider_id := (query.get("provider_id") or "").strip():
        arguments["provider_id"] = provider_id
    if (verified := (query.get("verified") or "").strip().lower()) != "":
        if verified not in ("true", "false"):
            errors["verified"] = ["must be true or false"]
        arguments["verified"] = verified == "true"
    if errors:
        raise ValidationFailed(errors)
    return arguments


class ActorAccessApi(ApiView):
    @extend_schema(
        operation_id="explainActorAccess",
        summary="Explain an actor's access to a resource",
        description=(
            "Whether the actor can reach the resource now (or `at`), and why not: each policy "
            "of the resource with the actor's membership and every condition checked against "
            "the context, and the resource's sites with their online, version-compatible "
            "gateways. The verdict is computed by the same code that authorises flows."
        ),
        parameters=PARAMETERS,
        responses={
            200: one("AccessExplanation", ExplanationOut()),
            **NOT_FOUND,
            422: INVALID[422],
            **ERRORS,
        },
    )
    def get(self, request: Request, id: str) -> Response:
        explanation = access_explain_for(
            subject_of(request), actor=id, **_arguments(request.query_params)
        )
        return data(ExplanationOut(explanation).data)


urlpatterns = [
    path("actors/<str:id>/access", ActorAccessApi.as_view(), name="api_actor_access"),
]
