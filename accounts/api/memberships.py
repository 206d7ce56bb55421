"""REST API: an actor group's members (portal.md §5.2 rows 43-45), over the group selectors and
services.

GET   /actor_groups/<actor_group_id>/memberships   the member actors {id, name, type}, paginated
PUT   /actor_groups/<actor_group_id>/memberships   {"memberships": [{"actor_id"}, ...]}: the new
                                                   member set → {"actor_ids": [...]}
PATCH /actor_groups/<actor_group_id>/memberships   {"memberships": {"add": [...], "remove":
                                                   [...]}} (blank ids ignored) → {"actor_ids"}

Writes need an editable group (static, not synced, not Everyone): others are a 404, as the
original's. An unknown actor id rolls everything back: 422 "Invalid payload".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.actors import ActorOut
from accounts.auth import Subject
from accounts.models import ActorGroup
from accounts.selectors.groups import group_get, group_member_ids, group_members_list
from accounts.services.groups import group_members_change, group_update
from firezone.api.authentication import subject_of
from firezone.api.exceptions import BadRequest
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
from firezone.errors import NotFound, Refused, ValidationFailed


class MemberIn(serializers.Serializer):
    actor_id = serializers.CharField(allow_blank=True)


class ChangeIn(serializers.Serializer):
    add = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)
    remove = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)


class ActorIdsOut(serializers.Serializer):
    actor_ids = serializers.ListField(child=serializers.UUIDField())


def _body(request: Request) -> object:
    body = request.data
    if not isinstance(body, dict) or "memberships" not in body:
        raise BadRequest()
    return body["memberships"]


def _ids(values: list[str]) -> list[str]:
    return [value for value in values if value.strip()]


@contextmanager
def _editable_group_write() -> Iterator[None]:
    """The original's errors: a group that is not editable is not found, an unknown actor is
    an invalid payload."""
    try:
        yield
    except ValidationFailed as exc:
        raise Refused("Invalid payload", code="invalid_payload") from exc
    except Refused as exc:
        raise NotFound() from exc


def _actor_ids(subject: Subject, group: ActorGroup) -> Response:
    ids = sorted(group_member_ids(subject, group=group), key=str)
    return data(ActorIdsOut({"actor_ids": ids}).data)


class MembershipsApi(ApiView):
    @extend_schema(
        operation_id="listActorGroupMemberships",
        summary="List a group's members",
        description="The actors of the group, by creation time.",
        parameters=PAGE_PARAMETERS,
        responses={200: many("Actor", ActorOut), **NOT_FOUND, **INVALID_CURSOR, **ERRORS},
    )
    def get(self, request: Request, actor_group_id: str) -> Response:
        subject = subject_of(request)
        group = group_get(subject, group_id=actor_group_id)
        return self.page(request, group_members_list(subject, group=group), ActorOut)

    @extend_schema(
        operation_id="replaceActorGroupMemberships",
        summary="Replace a group's members",
        description="The actors listed become the group's members. Synced groups and Everyone "
        'are not found (404); an unknown actor is a 422 "Invalid payload".',
        request=inline_serializer(
            name="ActorGroupMembershipsReplaceRequest",
            fields={"memberships": MemberIn(many=True)},
        ),
        responses={200: one("ActorIds", ActorIdsOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def put(self, request: Request, actor_group_id: str) -> Response:
        members = MemberIn(data=_body(request), many=True)
        members.is_valid(raise_exception=True)
        subject = subject_of(request)
        group = group_get(subject, group_id=actor_group_id)
        actor_ids = _ids([member["actor_id"] for member in members.validated_data])
        with _editable_group_write():
            group_update(subject=subject, group=group, members=actor_ids)
        return _actor_ids(subject, group)

    @extend_schema(
        operation_id="changeActorGroupMemberships",
        summary="Add and remove members of a group",
        description="Blank ids are ignored; the other members stay. Synced groups and Everyone "
        'are not found (404); an unknown actor is a 422 "Invalid payload".',
        request=inline_serializer(
            name="ActorGroupMembershipsChangeRequest", fields={"memberships": ChangeIn()}
        ),
        responses={200: one("ActorIds", ActorIdsOut()), **NOT_FOUND, **INVALID, **ERRORS},
    )
    def patch(self, request: Request, actor_group_id: str) -> Response:
        change = ChangeIn(data=_body(request))
        change.is_valid(raise_exception=True)
        subject = subject_of(request)
        group = group_get(subject, group_id=actor_group_id)
        with _editable_group_write():
            group_members_change(
                subject=subject,
                group=group,
                add=_ids(change.validated_data.get("add", [])),
                remove=_ids(change.validated_data.get("remove", [])),
            )
        return _actor_ids(subject, group)


urlpatterns = [
    path(
        "actor_groups/<str:actor_group_id>/memberships",
        MembershipsApi.as_view(),
        name="api_actor_group_memberships",
    ),
]
