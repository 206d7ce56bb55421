"""URL conf of the API origin (`API_EXTERNAL_URL`, chosen by firezone.api.middleware): the REST
API at the root (portal.md §5.2, no version prefix), its documents and the health check. The
device sockets are served on this origin too (ASGI routing, firezone/asgi.py)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from billing.api import stripe_webhook
from firezone import views
from firezone.api.exceptions import not_found

urlpatterns = [
    path("healthz", views.healthz, name="api_healthz"),
    path("openapi", SpectacularAPIView.as_view(urlconf=__name__), name="api_openapi"),
    path("swaggerui", SpectacularSwaggerSplitView.as_view(url_name="api_openapi"), name="api_docs"),
    # Stripe's webhook (billing_sync_jobs.md §1.6): a plain view, not in the OpenAPI document.
    path("integrations/stripe/webhooks", stripe_webhook, name="stripe_webhook"),
    path("", include("accounts.api")),
    path("", include("resources.api")),
    path("", include("gateways.api")),
    # Anything else: the API's 404 body, also with DEBUG (no HTML debug page on this origin).
    re_path(r"", not_found),
]

handler404 = "firezone.api.exceptions.not_found"
handler500 = "firezone.api.exceptions.server_error"
