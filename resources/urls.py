"""Admin routes of the resources app (portal.md §2.2)."""

from __future__ import annotations

from django.urls import path

from resources.views import access, policies, resources

A = "<str:account>"

urlpatterns = [
    path(f"{A}/resources", resources.resources_list, name="resources"),
    path(f"{A}/resources/new", resources.resource_new, name="resource_new"),
    path(f"{A}/resources/<str:id>", resources.resource_detail, name="resource"),
    path(f"{A}/resources/<str:id>/edit", resources.resource_edit, name="resource_edit"),
    path(f"{A}/resources/<str:id>/access", access.resource_access, name="resource_access"),
    # The actor page's "Check access" answers here: the explainer lives with the resources.
    path(f"{A}/actors/<str:id>/access", access.actor_access, name="actor_access"),
    path(f"{A}/policies", policies.policies_list, name="policies"),
    path(f"{A}/policies/new", policies.policy_new, name="policy_new"),
    path(f"{A}/policies/<str:id>", policies.policy_detail, name="policy"),
    path(f"{A}/policies/<str:id>/edit", policies.policy_edit, name="policy_edit"),
]
