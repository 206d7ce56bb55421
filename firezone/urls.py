from django.contrib import admin
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from firezone import views
from firezone.phoenix.rejection import websocket_only

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Device socket paths without a WebSocket upgrade (any method): 400, empty body (§1.1).
    path("client/websocket", csrf_exempt(websocket_only)),
    path("gateway/websocket", csrf_exempt(websocket_only)),
    path("relay/websocket", csrf_exempt(websocket_only)),
]
