"""Security headers for every response (portal.md §1.6).

* `CSPMiddleware`: django-csp's, with the policy of `settings.CONTENT_SECURITY_POLICY` and a
  fresh nonce per request (`request.csp_nonce`, `{{ CSP_NONCE }}` in templates) in every policy;
  Gravatar images only with GRAVATAR_ENABLED.
* Phoenix's "secure browser headers" that Django's SecurityMiddleware does not already send
  (`X-Permitted-Cross-Domain-Policies`, `X-Download-Options`, `Permissions-Policy`), and HSTS
  (`max-age=63072000; includeSubDomains; preload`) when the external URL is https.
* `Http404` raised by a view renders the portal's own 404 page (or its JSON variant) even with
  DEBUG on, so development shows what users see.
* `NulBytesMiddleware`: a NUL byte in a query or form parameter (name or value) or in a request
  header (the User-Agent is stored with sessions and tokens) is permanent bad input PostgreSQL
  text cannot store; it is answered 400 (the portal's 400 page, the API's JSON error body on the
  API origin) before any view reads it, instead of a 500 from whichever query or insert meets it
  first.
"""

from __future__ import annotations

from collections.abc import Callable

from csp.middleware import CSPMiddleware as _DjangoCSPMiddleware
from csp.middleware import PolicyParts
from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    QueryDict,
)
from django.http.multipartparser import MultiPartParserError

from firezone.error_views import bad_request, render_not_found

GRAVATAR_SOURCE = "https://www.gravatar.com"
HSTS = "max-age=63072000; includeSubDomains; preload"
# firezone.api.middleware.API_URLCONF (the API is a layer above): requests routed to the API get
# its JSON error body (portal.md §5.1).
API_URLCONF = "firezone.api_urls"


class CSPMiddleware(_DjangoCSPMiddleware):
    """django-csp adds the nonce to the policy only when the page used it. We want it always:
    `script-src` keeps `'unsafe-inline'` for CSP1 browsers, and only a nonce makes newer ones
    ignore it, so a page without nonce'd scripts would otherwise run injected inline scripts."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        str(request.csp_nonce)  # type: ignore[attr-defined]  # set by super() just above

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        # Gravatar images are allowed only when the avatar may use them (GRAVATAR_ENABLED),
        # read per request so the setting can change without rebuilding the policy.
        if settings.GRAVATAR_ENABLED and not report_only:
            parts.update = {**(parts.update or {}), "img-src": [GRAVATAR_SOURCE]}
        return parts


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.hsts = str(getattr(settings, "EXTERNAL_URL", "")).startswith("https://")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("X-Permitted-Cross-Domain-Policies", "none")
        response.headers.setdefault("X-Download-Options", "noopen")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        if self.hsts:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return render_not_found(request)
        return None


def _has_nul(params: QueryDict) -> bool:
    return any("\x00" in key or any("\x00" in v for v in values) for key, values in params.lists())


class NulBytesMiddleware:
    """400 for a NUL byte anywhere in `request.GET`, (form-encoded or multipart) `request.POST`
    or a request header.

    One check for every portal form and page: most forms are Django forms, but several editors
    and the sign-in views read the QueryDict by hand (the policy editor, the userpass and email
    sign-in, member pickers), and a form-field hook would miss those. No browser sends a NUL in
    a text field, so a plain 400 (permanent, not the 5xx a retrying client would retry) is the
    answer, not a per-field message."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            nul = (
                _has_nul(request.GET)
                or any("\x00" in str(v) for k, v in request.META.items() if k.startswith("HTTP_"))
                or (request.method == "POST" and _has_nul(request.POST))
            )
        except MultiPartParserError:  # a malformed multipart body: 400 without a traceback
            nul = True
        if nul:
            # Answered, not raised: a raised BadRequest is logged with a traceback, and would
            # get the portal's 400 page on the API origin too (the API URL conf is only in
            # force once the request is resolved).
            if getattr(request, "urlconf", None) == API_URLCONF:
                return JsonResponse({"error": {"reason": "Bad Request"}}, status=400)
            return bad_request(request)
        return self.get_response(request)
