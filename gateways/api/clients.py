"""REST API: clients (portal.md §5.2 rows 2-7), over the client selectors and services.

GET    /clients                 list, most recently seen first
GET    /clients/<id>            a client
PUT    /clients/<id>            {"client": {"name": ...}} (PATCH alike)
DELETE /clients/<id>            the deleted client (its flows go)
PUT    /clients/<id>/verify     the client, verified by the API client
PUT    /clients/<id>/unverify   the client, its verification cleared (its flows go)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
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
from firezone.api.views import ApiView, data
from gateways.models import Client
from gateways.presence import account_clients_topic, list_presences_sync
from gateways.selectors.clients import client_get, client_list
from gateways.services.clients import (
    client_delete,
    client_remove_verification,
    client_update,
    client_verify,
)

logger = logging.getLogger(__name__)


class ClientOut(serializers.Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField()
    actor_id = serializers.UUIDField()
    name = serializers.CharField()
    ipv4 = serializers.CharField(allow_null=True)
    ipv6 = serializers.CharField(allow_null=True)
    online = serializers.BooleanField()
    last_seen_user_agent = serializers.CharField()
    last_seen_remote_ip = serializers.CharField()
    last_seen_remote_ip_location_region = serializers.CharField(allow_null=True)
    last_seen_remote_ip_location_city = serializers.CharField(allow_null=True)
    last_seen_remote_ip_location_lat = serializers.FloatField(allow_null=True)
    last_seen_remote_ip_location_lon = serializers.FloatField(allow_null=True)
    last_seen_version = serializers.CharField()
    last_seen_at = serializers.DateTimeField()
    device_serial = serializers.CharField(allow_null=True)
    device_uuid = serializers.CharField(allow_null=True)
    identifier_for_vendor = serializers.CharField(allow_null=True)
    firebase_installation_id = serializers.CharField(allow_null=True)
    verified_at = serializers.DateTimeField(allow_null=True)
    verified_by = serializers.CharField(allow_null=True)
    verified_by_subject = serializers.JSONField(allow_null=True)
    created_at = serializers.DateTimeField(source="inserted_at")
    updated_at = serializers.DateTimeField()


class ClientIn(serializers.Serializer):
    # Shapes only: blank and length rules (and their messages) are the service's.
    name = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )


def _online_ids(account_id: Any) -> set[str]:
    """Ids of the account's connected clients (Redis; an outage shows everyone offline)."""
    try:
        return set(list_presences_sync(account_clients_topic(account_id)))
    except Exception:
        logger.warning("client presence of %s unavailable", account_id, exc_info=True)
        return set()


def _mark(clients: Iterable[Client], online: set[str]) -> None:
    for client in clients:
        client.online = str(client.pk) in online


def _one(client: Client) -> Response:
    _mark([client], _online_ids(client.account_id))
    return data(ClientOut(client).data)


class _ClientsOut(ClientOut):
    """A page's rows, marked online from one presence read."""

    @classmethod
    def many_init(cls, *args: Any, **kwargs: Any) -> serializers.ListSerializer:
        rows = list(args[0]) if args else []
        if rows:
            _mark(rows, _online_ids(rows[0].account_id))
        return super().many_init(rows, *args[1:], **kwargs)


class ClientsApi(ApiView):
    ordering = ("last_seen_at", "desc")

    @extend_schema(
        operation_id="listClients",
        summary="List clients",
        description="The account's clients, most recently seen first.",
        parameters=PAGE_PARAMETERS,
        responses={200: many("Client", ClientOut), **INVALID_CURSOR, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return self.page(request, client_list(subject_of(request)), _ClientsOut)


class ClientApi(ApiView):
    @extend_schema(
        operation_id="getClient",
        summary="Get a client",
        responses={200: one("Client", ClientOut()), **NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        return _one(client_get(subject_of(request), client_id=id))

    @extend_schema(
        operation_id="updateClient",
        summary="Rename a client",
        description="Only the name can be changed (1 to 255 characters).",
        request=wrapped("Client", "client", ClientIn()),
        responses={200: one("Client", ClientOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        fields = self.input(request, "client", ClientIn)
        subject = subject_of(request)
        client = client_get(subject, client_id=id)
        if "name" in fields:
            client = client_update(subject=subject, client=client, name=fields["name"])
        return _one(client)

    @extend_schema(
        operation_id="patchClient",
        summary="Rename a client",
        description="Only the name can be changed (1 to 255 characters).",
        request=wrapped("Client", "client", ClientIn()),
        responses={200: one("Client", ClientOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def patch(self, request: Request, id: str) -> Response:
        return self.put(request, id)

    @extend_schema(
        operation_id="deleteClient",
        summary="Delete a client",
        description="With its flows; answers the deleted client (its socket is closed).",
        responses={200: one("Client", ClientOut()), **NOT_FOUND, **ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        subject = subject_of(request)
        client = client_get(subject, client_id=id)
        client.online = False
        payload = ClientOut(client).data  # before the delete: the row's pk goes with it
        client_delete(subject=subject, client=client)
        return data(payload)


class ClientVerifyApi(ApiView):
    @extend_schema(
        operation_id="verifyClient",
        summary="Verify a client",
        description="Verified by the API client (no change if it already is).",
        request=None,
        responses={200: one("Client", ClientOut()), **NOT_FOUND, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        subject = subject_of(request)
        client = client_get(subject, client_id=id)
        return _one(client_verify(subject=subject, client=client))


class ClientUnverifyApi(ApiView):
    @extend_schema(
        operation_id="unverifyClient",
        summary="Remove a client's verification",
        description="Its flows are deleted (policies may have required verification).",
        request=None,
        responses={200: one("Client", ClientOut()), **NOT_FOUND, **ERRORS},
    )
    def put(self, request: Request, id: str) -> Response:
        subject = subject_of(request)
        client = client_get(subject, client_id=id)
        return _one(client_remove_verification(subject=subject, client=client))


urlpatterns = [
    path("clients", ClientsApi.as_view(), name="api_clients"),
    path("clients/<str:id>", ClientApi.as_view(), name="api_client"),
    path("clients/<str:id>/verify", ClientVerifyApi.as_view(), name="api_client_verify"),
    path("clients/<str:id>/unverify", ClientUnverifyApi.as_view(), name="api_client_unverify"),
]
