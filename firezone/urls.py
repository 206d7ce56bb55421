from django.contrib import admin
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from accounts.views import pages
from firezone import metrics, views
from firezone.phoenix.rejection import websocket_only

# Fixed routes first: the portal's `/<account>` catch-all (accounts.urls) comes last, and its
# reserved first segments (firezone.web.session.RESERVED_PATHS) are never account slugs.
urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # Prometheus for operators (firezone/metrics.py): allowed networks only, others get a 404.
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    # Device socket paths without a WebSocket upgrade (any method): 400, empty body (§1.1).
    path("client/websocket", csrf_exempt(websocket_only), name="client_websocket"),
    path("gateway/websocket", csrf_exempt(websocket_only), name="gateway_websocket"),
    path("relay/websocket", csrf_exempt(websocket_only), name="relay_websocket"),
    path("", include("accounts.urls")),
    # Admin pages (portal.md §2.2), each app's own routes.
    path("", include("gateways.urls")),
    path("", include("resources.urls")),
    path("", include("accounts.portal_urls")),
    path("", include("billing.urls")),
    path("", include("directory_sync.urls")),
    # Keep last: unknown `/<account>/...` pages ask signed-out visitors to sign in first.
    path("<str:account>/<path:rest>", pages.admin_fallback, name="admin_fallback"),
]

handler400 = "firezone.error_views.bad_request"
handler403 = "firezone.error_views.permission_denied"
handler404 = "firezone.error_views.page_not_found"
handler500 = "firezone.error_views.server_error"
