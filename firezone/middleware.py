"""Security headers for every response (portal.md §1.6).

* A fresh CSP nonce per request (`request.csp_nonce`, `{{ csp_nonce }}` in templates) and a
  Content-Security-Policy built around it: `default-src 'self' 'nonce-…'` plus the Mixpanel API;
  images from self, data:, HubSpot (and Gravatar only with GRAVATAR_ENABLED); styles from self
  (inline allowed); scripts from self with the nonce (plus the analytics CDNs). `'unsafe-inline'`
  is listed for old browsers only: browsers that understand nonces ignore it, so an injected
  inline script does not run.
  `frame-ancestors 'none'`, `base-uri 'self'`, `form-action 'self'`, `object-src 'none'`.
* Phoenix's "secure browser headers" that Django's SecurityMiddleware does not already send
  (`X-Permitted-Cross-Domain-Policies`, `X-Download-Options`, `Permissions-Policy`), and HSTS
  (`max-age=63072000; includeSubDomains; preload`) when the external URL is https.
* `Http404` raised by a view renders the portal's own 404 page (or its JSON variant) even with
  DEBUG on, so development shows what users see.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

from firezone.error_views import render_not_found

ANALYTICS_SCRIPT_SOURCES = (
    "https://cdn.mxpnl.com",
    "https://*.hs-scripts.com",
    "https://*.hs-analytics.net",
    "https://*.hs-banner.com",
    "https://*.hscollectedforms.net",
)
ANALYTICS_CONNECT_SOURCES = ("https://api-js.mixpanel.com",)
IMAGE_SOURCES = ("https://*.hubspot.com", "https://*.hsforms.com")
GRAVATAR_SOURCE = "https://www.gravatar.com"
HSTS = "max-age=63072000; includeSubDomains; preload"


def _gravatar() -> list[str]:
    return [GRAVATAR_SOURCE] if settings.GRAVATAR_ENABLED else []


def content_security_policy(nonce: str) -> str:
    directives = {
        "default-src": ["'self'", f"'nonce-{nonce}'", *ANALYTICS_CONNECT_SOURCES],
        "img-src": ["'self'", "data:", *_gravatar(), *IMAGE_SOURCES],
        "style-src": ["'self'", "'unsafe-inline'"],
        "script-src": ["'self'", "'unsafe-inline'", f"'nonce-{nonce}'", *ANALYTICS_SCRIPT_SOURCES],
        "connect-src": ["'self'", *ANALYTICS_CONNECT_SOURCES],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.hsts = str(getattr(settings, "EXTERNAL_URL", "")).startswith("https://")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(18)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", content_security_policy(nonce))
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
