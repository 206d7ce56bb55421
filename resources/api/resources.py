"""REST API: resources (portal.md §5.2 rows 8-12), over the resource selectors and services.

GET    /resources            list, by name
GET    /resources/<id>       by id or persistent id
POST   /resources            {"resource": {...}} → 201 + Location
PUT    /resources/<id>       the fields given (PATCH alike)
DELETE /resources/<id>       the deleted resource (its connections, policies and flows go)
"""

from __future__ import annotations

from typing import Any

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
from resources.models import Resource
from resources.selectors.resources import resource_get_by_id_or_persistent_id, resource_list
from resources.services.resources import resource_create, resource_delete, resource_update


class ResourceOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    address = serializers.CharField(allow_null=True)
    address_description = serializers.CharField(allow_null=True)
    type = serializers.CharField()
    ip_stack = serializers.CharField(required=False, help_text="DNS resources only")

    def to_representation(self, instance: Resource) -> dict[str, Any]:
        fields = super().to_representation(instance)
        if fields.get("ip_stack") is None:  # as the original: only DNS resources have one
            fields.pop("ip_stack", None)
        return fields


def _text() -> serializers.CharField:
    # Shapes only: blank, length and format rules (and their messages) are the service's.
    return serializers.CharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )


class ConnectionIn(serializers.Serializer):
    gateway_group_id = serializers.CharField(help_text="A site id")


class FilterIn(serializers.Serializer):
    protocol = serializers.CharField(help_text="tcp, udp or icmp")
    ports = serializers.ListField(
        child=serializers.CharField(), required=False, help_text='e.g. ["443", "1000-2000"]'
    )


class ResourceIn(serializers.Serializer):
    name = _text()
    type = _text()
    address = _text()
    address_description = _text()
    ip_stack = _text()
    connections = serializers.ListField(
        child=ConnectionIn(), required=False, help_text="At least one site"
    )
    filters = serializers.ListField(child=FilterIn(), required=False)


def _location(resource: Resource) -> str:
    return f"/resources/{resource.pk}"


class ResourcesApi(ApiView):
    ordering = ("name", "asc")

    @extend_schema(
        operation_id="listResources",
        summary="List resources",
        description="The account's resources by name.",
        parameters=PAGE_PARAMETERS,
        responses={200: many("Resource", ResourceOut), **INVALID_CURSOR, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return self.page(request, resource_list(subject_of(request)), ResourceOut)

    @extend_schema(
        operation_id="createResource",
        summary="Create a resource",
        description="Connected to at least one site; the same validations as the portal.",
        request=wrapped("Resource", "resource", ResourceIn()),
        responses={201: one("Resource", ResourceOut()), **INVALID, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        fields = self.input(request, "resource", ResourceIn)
        resource = resource_create(
            subject=subject_of(request),
            name=fields.pop("name", None),
            type=fields.pop("type", None),
            connections=fields.pop("connections", ()),
            **fields,
        )
        return created(ResourceOut(resource).data, _location(resource))


class ResourceApi(ApiView):
    @extend_schema(
        operation_id="getResource",
        summary="Get a resource",
        description="By id or persistent id.",
        responses={200: one("Resource", ResourceOut()), **NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        resource = resource_get_by_id_or_persistent_id(subject_of(request), id)
        return data(ResourceOut(resource).data)

    @extend_schema(
        operation_id="updateResource",
        summary="Update a resource",
        description="Changes the fields given; the others stay.",
        request=wrapped("Resource", "resource", ResourceIn()),
        responses={200: one("Resource", ResourceOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        fields = self.input(request, "resource", ResourceIn)
        subject = subject_of(request)
        resource = resource_get_by_id_or_persistent_id(subject, id)
        resource = resource_update(subject=subject, resource=resource, **fields)
        return data(ResourceOut(resource).data)

    @extend_schema(
        operation_id="patchResource",
        summary="Update a resource",
        description="Changes the fields given; the others stay.",
        request=wrapped("Resource", "resource", ResourceIn()),
        responses={200: one("Resource", ResourceOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def patch(self, request: Request, id: str) -> Response:
        return self.put(request, id)

    @extend_schema(
        operation_id="deleteResource",
        summary="Delete a resource",
        description="With its site connections, policies and flows; answers the deleted "
        "resource. The Internet resource cannot be deleted (422).",
        responses={200: one("Resource", ResourceOut()), **NOT_FOUND, 422: INVALID[422], **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        subject = subject_of(request)
        resource = resource_get_by_id_or_persistent_id(subject, id)
        payload = ResourceOut(resource).data  # before the delete: the row's pk goes with it
        resource_delete(subject=subject, resource=resource)
        return data(payload)


urlpatterns = [
    path("resources", ResourcesApi.as_view(), name="api_resources"),
    path("resources/<str:id>", ResourceApi.as_view(), name="api_resource"),
]
