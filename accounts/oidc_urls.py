"""URL patterns of the OpenID Connect sign-in (accounts/views/oidc.py), portal.md §2.1.

Meant to be included at the root next to the other `/<account>/...` routes, before any
catch-all: `path("", include("accounts.oidc_urls"))`.
"""

from django.urls import path

from accounts.views import oidc

urlpatterns = [
    path(
        "<str:account>/sign_in/providers/<str:provider_id>/redirect",
        oidc.redirect_to_idp,
        name="oidc_redirect",
    ),
    path(
        "<str:account>/sign_in/providers/<str:provider_id>/handle_callback",
        oidc.handle_callback,
        name="oidc_callback",
    ),
]
