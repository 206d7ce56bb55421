"""Admin routes of the gateways app (portal.md §2.2)."""

from __future__ import annotations

from django.urls import path

from gateways.views import clients, relays, sites

A = "<str:account>"

urlpatterns = [
    path(f"{A}/sites", sites.sites_list, name="sites"),
    path(f"{A}/sites/new", sites.site_new, name="site_new"),
    path(f"{A}/sites/<str:id>", sites.site_detail, name="site"),
    path(f"{A}/sites/<str:id>/edit", sites.site_edit, name="site_edit"),
    path(f"{A}/sites/<str:id>/new_token", sites.site_new_token, name="site_new_token"),
    path(f"{A}/sites/<str:id>/gateways", sites.site_gateways, name="site_gateways"),
    path(f"{A}/gateways/<str:id>", sites.gateway_detail, name="gateway"),
    path(f"{A}/clients", clients.clients_list, name="clients"),
    path(f"{A}/clients/<str:id>", clients.client_detail, name="client"),
    path(f"{A}/clients/<str:id>/edit", clients.client_edit, name="client_edit"),
    path(f"{A}/relay_groups", relays.relay_groups_list, name="relay_groups"),
    path(f"{A}/relay_groups/new", relays.relay_group_new, name="relay_group_new"),
    path(f"{A}/relay_groups/<str:id>", relays.relay_group_detail, name="relay_group"),
    path(f"{A}/relay_groups/<str:id>/edit", relays.relay_group_edit, name="relay_group_edit"),
    path(
        f"{A}/relay_groups/<str:id>/new_token",
        relays.relay_group_new_token,
        name="relay_group_new_token",
    ),
    path(f"{A}/relays/<str:id>", relays.relay_detail, name="relay"),
]
