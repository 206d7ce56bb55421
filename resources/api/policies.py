"""REST API: policies (portal.md §5.2 rows 13-17), over the policy selectors and services.

    GET    /policies            list, oldest first
    GET    /policies/<id>       by id or persistent id
    POST   /policies            {"policy": {actor_group_id, resource_id, description?,
                                 conditions?}} → 201 + Location
    PUT    /policies/<id>       the fields given (PATCH alike)
    DELETE /policies/<id>       the deleted policy (its flows go)

Conditions are accepted on write and not returned (as the original). A group or resource id of
another account (or none) in a body is a 404, as the domain reports it for every caller.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from firezone.api.authentication import subject_of
from firezone.api.schema import (
    ERRORS,
    INVALID,
    INVALID_CURSOR,
    NOT_FOUND,
    PAGE_PARAMETERS,
    many,
    one,
    wrapped,
)
from firezone.api.views import ApiView, created, data
from resources.models import Policy
from resources.selectors.policies import policy_get_by_id_or_persistent_id, policy_list
from resources.services.policies import policy_create, policy_delete, policy_update


class PolicyOut(serializers.Serializer):
    id = serializers.UUIDField()
    actor_group_id = serializers.UUIDField()
    resource_id = serializers.UUIDField()
    description = serializers.CharField(allow_null=True)


def _text(help_text: str = "") -> serializers.CharField:
    # Shapes only: blank and format rules (and their messages) are the service's.
    return serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text=help_text or None
    )


class ConditionIn(serializers.Serializer):
    property = _text(
        "remote_ip_location_region, remote_ip, provider_id, client_verified or current_utc_datetime"
    )
    operator = _text("is_in, is_not_in, is_in_cidr, ...")
    values = serializers.ListField(child=serializers.CharField(), required=False)


class PolicyIn(serializers.Serializer):
    actor_group_id = _text()
    resource_id = _text()
    description = _text()
    conditions = serializers.ListField(child=ConditionIn(), required=False)


def _location(policy: Policy) -> str:
    return f"/policies/{policy.pk}"


class PoliciesApi(ApiView):
    ordering = ("inserted_at", "asc")

    @extend_schema(
        operation_id="listPolicies",
        summary="List policies",
        description="The account's policies, oldest first.",
        parameters=PAGE_PARAMETERS,
        responses={200: many("Policy", PolicyOut), **INVALID_CURSOR, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return self.page(request, policy_list(subject_of(request)), PolicyOut)

    @extend_schema(
        operation_id="createPolicy",
        summary="Create a policy",
        description="Grants a group access to a resource; one policy per group and resource.",
        request=wrapped("Policy", "policy", PolicyIn()),
        responses={201: one("Policy", PolicyOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        fields = self.input(request, "policy", PolicyIn)
        policy = policy_create(
            subject=subject_of(request),
            actor_group_id=fields.pop("actor_group_id", None),
            resource_id=fields.pop("resource_id", None),
            **fields,
        )
        return created(PolicyOut(policy).data, _location(policy))


class PolicyApi(ApiView):
    @extend_schema(
        operation_id="getPolicy",
        summary="Get a policy",
        description="By id or persistent id.",
        responses={200: one("Policy", PolicyOut()), **NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        policy = policy_get_by_id_or_persistent_id(subject_of(request), id)
        return data(PolicyOut(policy).data)

    @extend_schema(
        operation_id="updatePolicy",
        summary="Update a policy",
        description="Changes the fields given; the others stay.",
        request=wrapped("Policy", "policy", PolicyIn()),
        responses={200: one("Policy", PolicyOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        fields = self.input(request, "policy", PolicyIn)
        subject = subject_of(request)
        policy = policy_get_by_id_or_persistent_id(subject, id)
        policy = policy_update(subject=subject, policy=policy, **fields)
        return data(PolicyOut(policy).data)

    @extend_schema(
        operation_id="patchPolicy",
        summary="Update a policy",
        description="Changes the fields given; the others stay.",
        request=wrapped("Policy", "policy", PolicyIn()),
        responses={200: one("Policy", PolicyOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def patch(self, request: Request, id: str) -> Response:
        return self.put(request, id)

    @extend_schema(
        operation_id="deletePolicy",
        summary="Delete a policy",
        description="With its flows; answers the deleted policy.",
        responses={200: one("Policy", PolicyOut()), **NOT_FOUND, **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        subject = subject_of(request)
        policy = policy_get_by_id_or_persistent_id(subject, id)
        payload = PolicyOut(policy).data  # before the delete: the row's pk goes with it
        policy_delete(subject=subject, policy=policy)
        return data(payload)


urlpatterns = [
    path("policies", PoliciesApi.as_view(), name="api_policies"),
    path("policies/<str:id>", PolicyApi.as_view(), name="api_policy"),
]
