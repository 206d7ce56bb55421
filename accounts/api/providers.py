"""REST API: identity providers (portal.md §5.2 rows 46-48), over the provider selectors and
services.

GET    /identity_providers          list, by creation time
GET    /identity_providers/<id>     {id, name}
DELETE /identity_providers/<id>     the deleted provider; the last active one is a 422
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors.providers import provider_get, provider_list
from accounts.services.providers import provider_delete
from firezone.api.authentication import subject_of
from firezone.api.schema import (
    ERRORS,
    INVALID,
    INVALID_CURSOR,
    NOT_FOUND,
    PAGE_PARAMETERS,
    many,
    one,
)
from firezone.api.views import ApiView, data


class ProviderOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class ProvidersApi(ApiView):
    @extend_schema(
        operation_id="listIdentityProviders",
        summary="List identity providers",
        description="By creation time.",
        parameters=PAGE_PARAMETERS,
        responses={200: many("IdentityProvider", ProviderOut), **INVALID_CURSOR, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return self.page(request, provider_list(subject_of(request)), ProviderOut)


class ProviderApi(ApiView):
    @extend_schema(
        operation_id="getIdentityProvider",
        summary="Get an identity provider",
        responses={200: one("IdentityProvider", ProviderOut()), **NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        return data(ProviderOut(provider_get(subject_of(request), provider_id=id)).data)

    @extend_schema(
        operation_id="deleteIdentityProvider",
        summary="Delete an identity provider",
        description="With its identities and synced groups (actors stay); answers the deleted "
        "provider. The last active provider cannot be deleted (422).",
        responses={
            200: one("IdentityProvider", ProviderOut()),
            **NOT_FOUND,
            422: INVALID[422],
            **ERRORS,
        },
    )
    def delete(self, request: Request, id: str) -> Response:
        subject = subject_of(request)
        provider = provider_get(subject, provider_id=id)
        payload = ProviderOut(provider).data
        provider_delete(subject=subject, provider=provider)
        return data(payload)


urlpatterns = [
    path("identity_providers", ProvidersApi.as_view(), name="api_identity_providers"),
    path("identity_providers/<str:id>", ProviderApi.as_view(), name="api_identity_provider"),
]
