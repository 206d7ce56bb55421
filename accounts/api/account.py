"""REST API: the API client's own account (portal.md §5.2 row 1).

GET /account   {id, slug, name, legal_name, limits}; `limits` holds only configured limits,
               each {used, available, total}
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors.accounts import account_get
from billing.limits import limits_usage
from firezone.api.authentication import subject_of
from firezone.api.schema import ERRORS, one
from firezone.api.views import ApiView, data


class LimitOut(serializers.Serializer):
    used = serializers.IntegerField()
    available = serializers.IntegerField()
    total = serializers.IntegerField()


class AccountOut(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()
    legal_name = serializers.CharField()
    limits = serializers.DictField(
        child=LimitOut(),
        help_text="users, monthly_active_users, service_accounts, account_admin_users, "
        "gateway_groups: only those the plan limits",
    )


class AccountApi(ApiView):
    @extend_schema(
        operation_id="getAccount",
        summary="Get the account",
        description="The API client's account and how much of each plan limit it uses.",
        responses={200: one("Account", AccountOut()), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        subject = subject_of(request)
        account = account_get(subject)
        payload = {
            "id": account.pk,
            "slug": account.slug,
            "name": account.name,
            "legal_name": account.legal_name,
            "limits": limits_usage(subject),
        }
        return data(AccountOut(payload).data)


urlpatterns = [
    path("account", AccountApi.as_view(), name="api_account"),
]
