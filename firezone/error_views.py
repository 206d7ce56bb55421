"""Error pages (portal.md §1.5): standalone HTML pages, or JSON for requests that do not accept
HTML (`{"errors": {"detail": "Not Found"}}`, `{"errors": {"detail": "internal_error"}}`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

JSON_DETAIL = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    500: "internal_error",
}
TITLES = {400: "400 Bad Request", 403: "403 Forbidden", 404: "404 Not Found", 500: "500 Error"}


def wants_html(request: HttpRequest) -> bool:
    """Browsers and clients that send no Accept header (or */*) get HTML; API-style clients
    asking for JSON only get JSON."""
    try:
        return request.accepts("text/html")
    except Exception:  # a malformed Accept header
        return True


def render_error(request: HttpRequest, status: int) -> HttpResponse:
    if not wants_html(request):
        return JsonResponse({"errors": {"detail": JSON_DETAIL[status]}}, status=status)
    body: str
    try:
        # No request context for 500: context processors may be what failed.
        context = {"page_title": TITLES[status], "status": status}
        body = loader.render_to_string(
            f"errors/{status}.html", context, request=None if status == 500 else request
        )
    except Exception:  # the page must render even when templates are broken
        body = f"<!DOCTYPE html><title>{TITLES[status]}</title><h1>{status}</h1>"
    return HttpResponse(body, status=status)


def render_not_found(request: HttpRequest) -> HttpResponse:
    return render_error(request, 404)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return render_error(request, 500)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, 403)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, 400)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render_error(request, 403)
