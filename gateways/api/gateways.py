"""REST API: the gateways of a site (portal.md §5.2 rows 26-28), over the gateway selectors
and services.

GET    /gateway_groups/<site id>/gateways        the site's gateways, oldest first
GET    /gateway_groups/<site id>/gateways/<id>   a gateway of the account
DELETE /gateway_groups/<site id>/gateways/<id>   the deleted gateway (its socket is closed)
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
    INVALID_CURSOR,
    NOT_FOUND,
    PAGE_PARAMETERS,
    many,
    one,
)
from firezone.api.views import ApiView, data
from gateways import presence
from gateways.models import Gateway
from gateways.selectors.gateways import gateway_get, gateway_list
from gateways.selectors.sites import site_get
from gateways.services.gateways import gateway_delete

logger = logging.getLogger(__name__)


class GatewayOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    ipv4 = serializers.CharField(allow_null=True)
    ipv6 = serializers.CharField(allow_null=True)
    online = serializers.BooleanField()


def _online_ids(account_id: Any) -> set[str]:
    """Ids of the account's connected gateways (Redis; an outage shows them offline)."""
    try:
        return set(presence.list_presences_sync(presence.account_gateways_topic(account_id)))
    except Exception:
        logger.warning("gateway presence of %s unavailable", account_id, exc_info=True)
        return set()


def _mark(gateways: Iterable[Gateway]) -> None:
    """`online` from one presence read of the account's gateways."""
    rows = list(gateways)
    online = _online_ids(rows[0].account_id) if rows else set()
    for gateway in rows:
        gateway.online = str(gateway.pk) in online


class _GatewaysOut(GatewayOut):
    """A page's rows, marked online from one presence read."""

    @classmethod
    def many_init(cls, *args: Any, **kwargs: Any) -> serializers.ListSerializer:
        rows = list(args[0]) if args else []
        _mark(rows)
        return super().many_init(rows, *args[1:], **kwargs)


class GatewaysApi(ApiView):
    ordering = ("inserted_at", "asc")

    @extend_schema(
        operation_id="listGateways",
        summary="List the gateways of a gateway group",
        description="Oldest first.",
        parameters=PAGE_PARAMETERS,
        responses={200: many("Gateway", GatewayOut), **NOT_FOUND, **INVALID_CURSOR, **ERRORS},
    )
    def get(self, request: Request, gateway_group_id: str) -> Response:
        subject = subject_of(request)
        site = site_get(subject, site_id=gateway_group_id)
        return self.page(request, gateway_list(subject, site=site), _GatewaysOut)


class GatewayApi(ApiView):
    @extend_schema(
        operation_id="getGateway",
        summary="Get a gateway",
        description="A gateway of the account (as the original, the site is not checked).",
        responses={200: one("Gateway", GatewayOut()), **NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, gateway_group_id: str, id: str) -> Response:
        gateway = gateway_get(subject_of(request), gateway_id=id)
        _mark([gateway])
        return data(GatewayOut(gateway).data)

    @extend_schema(
        operation_id="deleteGateway",
        summary="Delete a gateway",
        description="With its flows; answers the deleted gateway (its socket is closed).",
        responses={200: one("Gateway", GatewayOut()), **NOT_FOUND, **ERRORS},
    )
    def delete(self, request: Request, gateway_group_id: str, id: str) -> Response:
        subject = subject_of(request)
        gateway = gateway_get(subject, gateway_id=id)
        _mark([gateway])
        payload = GatewayOut(gateway).data  # before the delete: the row's pk goes with it
        gateway_delete(subject=subject, gateway=gateway)
        return data(payload)


urlpatterns = [
    path(
        "gateway_groups/<str:gateway_group_id>/gateways", GatewaysApi.as_view(), name="api_gateways"
    ),
    path(
        "gateway_groups/<str:gateway_group_id>/gateways/<str:id>",
        GatewayApi.as_view(),
        name="api_gateway",
    ),
]
