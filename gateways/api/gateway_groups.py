"""REST API: gateway groups (sites) and their tokens (portal.md §5.2 rows 18-25), over the
site selectors and services.

GET    /gateway_groups                      list, oldest first (the Internet site included)
GET    /gateway_groups/<id>                 a site
POST   /gateway_groups                      {"gateway_group": {"name": ...}} → 201 + Location
PUT    /gateway_groups/<id>                 rename (PATCH alike); not the Internet site (422)
DELETE /gateway_groups/<id>                 the deleted site; not the Internet site (422)
POST   /gateway_groups/<id>/tokens          201 {id, token}: a gateway token, shown once
DELETE /gateway_groups/<id>/tokens          {deleted_count}: every token of the site revoked
DELETE /gateway_groups/<id>/tokens/<tid>    {id}: one gateway token revoked
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Token
from accounts.selectors.tokens import token_get
from accounts.services.tokens_admin import token_delete
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
from firezone.errors import NotFound
from gateways.models import Site
from gateways.selectors.sites import site_get, site_list
from gateways.services.sites import (
    site_create,
    site_delete,
    site_token_create,
    site_tokens_delete_all,
    site_update,
)


class SiteOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class SiteIn(serializers.Serializer):
    # Shapes only: blank and length rules (and their messages) are the service's.
    name = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )


_TOKEN = inline_serializer(
    name="GatewayGroupTokenResponse",
    fields={
        "data": inline_serializer(
            name="GatewayGroupToken",
            fields={"id": serializers.UUIDField(), "token": serializers.CharField()},
        )
    },
)
_DELETED_COUNT = inline_serializer(
    name="GatewayGroupTokensDeletedResponse",
    fields={
        "data": inline_serializer(
            name="GatewayGroupTokensDeleted", fields={"deleted_count": serializers.IntegerField()}
        )
    },
)
_DELETED_TOKEN = inline_serializer(
    name="GatewayGroupTokenDeletedResponse",
    fields={
        "data": inline_serializer(
            name="GatewayGroupTokenDeleted", fields={"id": serializers.UUIDField()}
        )
    },
)


def _location(site: Site) -> str:
    return f"/gateway_groups/{site.pk}"


class SitesApi(ApiView):
    ordering = ("inserted_at", "asc")

    @extend_schema(
        operation_id="listGatewayGroups",
        summary="List gateway groups",
        description="The account's sites, oldest first, the Internet site included.",
        parameters=PAGE_PARAMETERS,
        responses={200: many("GatewayGroup", SiteOut), **INVALID_CURSOR, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return self.page(request, site_list(subject_of(request), include_internet=True), SiteOut)

    @extend_schema(
        operation_id="createGatewayGroup",
        summary="Create a gateway group",
        description="A site (1 to 64 characters, unique in the account); the plan's site limit "
        "applies (422 with the reason).",
        request=wrapped("GatewayGroup", "gateway_group", SiteIn()),
        responses={201: one("GatewayGroup", SiteOut()), **INVALID, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        fields = self.input(request, "gateway_group", SiteIn)
        # An absent name is blank (the service's "can't be blank"), not a random one.
        site = site_create(subject=subject_of(request), name=fields.get("name") or "")
        return created(SiteOut(site).data, _location(site))


class SiteApi(ApiView):
    @extend_schema(
        operation_id="getGatewayGroup",
        summary="Get a gateway group",
        responses={200: one("GatewayGroup", SiteOut()), **NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        return data(SiteOut(site_get(subject_of(request), site_id=id)).data)

    @extend_schema(
        operation_id="updateGatewayGroup",
        summary="Rename a gateway group",
        description="The Internet site cannot be changed (422).",
        request=wrapped("GatewayGroup", "gateway_group", SiteIn()),
        responses={200: one("GatewayGroup", SiteOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        fields = self.input(request, "gateway_group", SiteIn)
        subject = subject_of(request)
        site = site_get(subject, site_id=id)
        if "name" in fields:
            site = site_update(subject=subject, site=site, name=fields["name"])
        return data(SiteOut(site).data)

    @extend_schema(
        operation_id="patchGatewayGroup",
        summary="Rename a gateway group",
        description="The Internet site cannot be changed (422).",
        request=wrapped("GatewayGroup", "gateway_group", SiteIn()),
        responses={200: one("GatewayGroup", SiteOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def patch(self, request: Request, id: str) -> Response:
        return self.put(request, id)

    @extend_schema(
        operation_id="deleteGatewayGroup",
        summary="Delete a gateway group",
        description="With its gateways, tokens, resource connections and their flows; answers "
        "the deleted site. The Internet site cannot be deleted (422).",
        responses={200: one("GatewayGroup", SiteOut()), **NOT_FOUND, 422: INVALID[422], **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        subject = subject_of(request)
        site = site_get(subject, site_id=id)
        payload = SiteOut(site).data  # before the delete: the row's pk goes with it
        site_delete(subject=subject, site=site)
        return data(payload)


class SiteTokensApi(ApiView):
    @extend_schema(
        operation_id="createGatewayGroupToken",
        summary="Create a gateway token",
        description="A never-expiring token for the site's gateways; the encoded token is "
        "shown only in this response.",
        request=None,
        responses={201: _TOKEN, **NOT_FOUND, **ERRORS},
    )
    def post(self, request: Request, gateway_group_id: str) -> Response:
        subject = subject_of(request)
        site = site_get(subject, site_id=gateway_group_id)
        issued = site_token_create(subject=subject, site=site)
        return data({"id": str(issued.token.pk), "token": issued.encoded}, status=201)

    @extend_schema(
        operation_id="deleteGatewayGroupTokens",
        summary="Revoke all gateway tokens of a site",
        description="The gateways that authenticated with them are disconnected.",
        responses={200: _DELETED_COUNT, **NOT_FOUND, **ERRORS},
    )
    def delete(self, request: Request, gateway_group_id: str) -> Response:
        subject = subject_of(request)
        site = site_get(subject, site_id=gateway_group_id)
        return data({"deleted_count": site_tokens_delete_all(subject=subject, site=site)})


class SiteTokenApi(ApiView):
    @extend_schema(
        operation_id="deleteGatewayGroupToken",
        summary="Revoke a gateway token",
        description="A gateway token of the account (as the original, not checked to be the "
        "named site's); the gateways that authenticated with it are disconnected.",
        responses={200: _DELETED_TOKEN, **NOT_FOUND, **ERRORS},
    )
    def delete(self, request: Request, gateway_group_id: str, id: str) -> Response:
        subject = subject_of(request)
        site_get(subject, site_id=gateway_group_id)
        token = token_get(subject, token_id=id)
        if token.type != Token.Type.GATEWAY_GROUP:  # not an API client's way to end sessions
            raise NotFound()
        payload = {"id": str(token.pk)}  # before the delete: the row's pk goes with it
        token_delete(subject=subject, token=token)
        return data(payload)


urlpatterns = [
    path("gateway_groups", SitesApi.as_view(), name="api_gateway_groups"),
    path("gateway_groups/<str:id>", SiteApi.as_view(), name="api_gateway_group"),
    path(
        "gateway_groups/<str:gateway_group_id>/tokens",
        SiteTokensApi.as_view(),
        name="api_gateway_group_tokens",
    ),
    path(
        "gateway_groups/<str:gateway_group_id>/tokens/<str:id>",
        SiteTokenApi.as_view(),
        name="api_gateway_group_token",
    ),
]
