"""Admin routes of the accounts app (portal.md §2.2)."""

from __future__ import annotations

from django.urls import path, register_converter

from accounts.views import account_settings, api_clients, audit_log, groups
from accounts.views.actors import detail as actors_detail
from accounts.views.actors import edit as actors_edit
from accounts.views.actors import index as actors_index
from accounts.views.actors import new as actors_new
from accounts.views.identity_providers import connect as idp_connect
from accounts.views.identity_providers import detail as idp_detail
from accounts.views.identity_providers import form as idp_form
from accounts.views.identity_providers import index as idp_index

A = "<str:account>"


class AdapterConverter:
    """The IdP adapters that have their own pages (§4.13.3-§4.13.5); email and userpass are
    "system" providers with the `system/<id>` page."""

    regex = "openid_connect|google_workspace|microsoft_entra|okta|jumpcloud|mock"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AdapterConverter, "adapter")

urlpatterns = [
    path(f"{A}/actors", actors_index.actors_list, name="actors"),
    path(f"{A}/actors/new", actors_new.actor_new, name="actor_new"),
    path(f"{A}/actors/users/new", actors_new.user_new, name="user_new"),
    path(
        f"{A}/actors/users/<str:id>/new_identity",
        actors_new.user_new_identity,
        name="user_new_identity",
    ),
    path(
        f"{A}/actors/service_accounts/new",
        actors_new.service_account_new,
        name="service_account_new",
    ),
    path(
        f"{A}/actors/service_accounts/<str:id>/new_identity",
        actors_new.service_account_new_identity,
        name="service_account_new_identity",
    ),
    path(f"{A}/actors/<str:id>", actors_detail.actor_detail, name="actor"),
    path(f"{A}/actors/<str:id>/edit", actors_edit.actor_edit, name="actor_edit"),
    path(
        f"{A}/actors/<str:id>/edit_groups", actors_edit.actor_edit_groups, name="actor_edit_groups"
    ),
    path(f"{A}/groups", groups.groups_list, name="groups"),
    path(f"{A}/groups/new", groups.group_new, name="group_new"),
    path(f"{A}/groups/<str:id>", groups.group_detail, name="group"),
    path(f"{A}/groups/<str:id>/edit", groups.group_edit, name="group_edit"),
    path(f"{A}/groups/<str:id>/edit_actors", groups.group_edit_actors, name="group_edit_actors"),
    path(f"{A}/settings/account", account_settings.account_settings, name="settings_account"),
    path(f"{A}/settings/account/edit", account_settings.account_edit, name="settings_account_edit"),
    path(
        f"{A}/settings/account/notifications/edit",
        account_settings.notifications_edit,
        name="settings_notifications_edit",
    ),
    path(f"{A}/settings/dns", account_settings.dns_settings, name="settings_dns"),
    path(f"{A}/settings/audit_log", audit_log.audit_log, name="settings_audit_log"),
    path(
        f"{A}/settings/audit_log/export.<str:format>",
        audit_log.audit_log_export,
        name="settings_audit_log_export",
    ),
    path(f"{A}/settings/api_clients", api_clients.api_clients_list, name="api_clients"),
    path(f"{A}/settings/api_clients/beta", api_clients.api_clients_beta, name="api_clients_beta"),
    path(f"{A}/settings/api_clients/new", api_clients.api_client_new, name="api_client_new"),
    path(f"{A}/settings/api_clients/<str:id>", api_clients.api_client_detail, name="api_client"),
    path(
        f"{A}/settings/api_clients/<str:id>/edit",
        api_clients.api_client_edit,
        name="api_client_edit",
    ),
    path(
        f"{A}/settings/api_clients/<str:id>/new_token",
        api_clients.api_client_new_token,
        name="api_client_new_token",
    ),
    path(
        f"{A}/settings/identity_providers",
        idp_index.providers_list,
        name="identity_providers",
    ),
    path(
        f"{A}/settings/identity_providers/new",
        idp_form.provider_new,
        name="identity_provider_new",
    ),
    path(
        f"{A}/settings/identity_providers/system/<str:id>",
        idp_detail.system_provider_detail,
        name="system_provider",
    ),
    path(
        f"{A}/settings/identity_providers/<adapter:adapter>/new",
        idp_form.provider_adapter_new,
        name="identity_provider_adapter_new",
    ),
    path(
        f"{A}/settings/identity_providers/<adapter:adapter>/<str:id>",
        idp_detail.provider_detail,
        name="identity_provider",
    ),
    path(
        f"{A}/settings/identity_providers/<adapter:adapter>/<str:id>/edit",
        idp_form.provider_edit,
        name="identity_provider_edit",
    ),
    path(
        f"{A}/settings/identity_providers/<adapter:adapter>/<str:id>/redirect",
        idp_connect.provider_connect_redirect,
        name="identity_provider_connect",
    ),
    path(
        f"{A}/settings/identity_providers/<adapter:adapter>/<str:id>/handle_callback",
        idp_connect.provider_connect_callback,
        name="identity_provider_connect_callback",
    ),
]
