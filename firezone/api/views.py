"""The base of every API endpoint and the §5.1 envelopes.

    class ThingsApi(ApiView):
        ordering = ("name", "asc")                      # the list's keyset

        def get(self, request):                         # {"data": [...], "metadata": {...}}
            things = thing_list(subject_of(request))
            return self.page(request, things, ThingOut)

        def post(self, request):                        # 201 + Location
            fields = self.input(request, "thing", ThingIn)
            thing = thing_create(subject=subject_of(request), **fields)
            return created(ThingOut(thing).data, f"/things/{thing.pk}")

Bodies are wrapped in a singular key (`{"thing": {...}}`, 400 "Bad Request" without it); input
serializers only check shapes and types (their errors are 422s), the rules and their messages are
the services'. Responses are `{"data": ...}`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from firezone.api.exceptions import BadRequest
from firezone.api.pagination import KeysetPagination, Ordering


class ApiView(APIView):
    # Authentication, permission (an API client), rate limit, parsers and renderers come from
    # `settings.REST_FRAMEWORK`; lists paginate by `ordering`. (A comment, not a docstring:
    # /openapi would show it as every operation's description.)

    ordering: Ordering = ("inserted_at", "asc")

    def page(
        self, request: Request, queryset: QuerySet, serializer: type[serializers.BaseSerializer]
    ) -> Response:
        paginator = KeysetPagination()
        rows = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(serializer(rows, many=True).data)

    def input(
        self, request: Request, wrapper: str, serializer: type[serializers.Serializer]
    ) -> dict[str, Any]:
        """The fields given under `wrapper`, type-checked by `serializer` (whose fields are all
        optional: absent ones are left out, so a PUT or PATCH changes only what it names)."""
        body = request.data
        if not isinstance(body, dict) or not isinstance(body.get(wrapper), dict):
            raise BadRequest()
        checked = serializer(data=body[wrapper])
        checked.is_valid(raise_exception=True)
        return dict(checked.validated_data)


def data(payload: Any, *, status: int = 200) -> Response:
    return Response({"data": payload}, status=status)


def created(payload: Any, location: str) -> Response:
    return Response({"data": payload}, status=201, headers={"Location": location})
