from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from firezone.health import check_database, check_redis


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    failures = [f for f in (check_database(), check_redis()) if f]
    if failures:
        return JsonResponse({"status": "unavailable", "down": failures}, status=503)
    return JsonResponse({"status": "ok"})
