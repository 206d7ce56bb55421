"""Host routing: the API origin (`API_EXTERNAL_URL`) serves `firezone.api_urls` at its root.

The portal's URLs put an account slug first (`/<account>/...`), so the API cannot share them:
`/resources` would be an account called "resources". Requests whose Host (with port) is the API
origin's get the API's URL conf instead; everything else is the portal's. When the API origin is
the portal's own (the production default without API_EXTERNAL_URL), nothing is rerouted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

API_URLCONF = "firezone.api_urls"
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


@functools.lru_cache(maxsize=4)
def _origin(url: str) -> tuple[str, int] | None:
    """(host, port) of an http(s)/ws(s) URL, lower-case; None when it names no host."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    return parts.hostname.lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)


def is_api_request(request: HttpRequest) -> bool:
    api_url = str(settings.API_EXTERNAL_URL)
    api = _origin(api_url)
    if api is None or api == _origin(str(settings.EXTERNAL_URL)):
        return False
    # A Host without a port means the API scheme's default one: behind a TLS-terminating proxy
    # the request itself arrives over plain http.
    scheme = urlsplit(api_url).scheme or "http"
    host = request.get_host()  # validated against ALLOWED_HOSTS; DisallowedHost otherwise
    return _origin(f"{scheme}://{host}") == api


class ApiHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_request(request):
            request.urlconf = API_URLCONF
        return self.get_response(request)
