"""django-csp's header and WhiteNoise's static files, as the portal configures them."""

from __future__ import annotations

import re

import pytest
from django.http import FileResponse, HttpResponse
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, list[str]]:
    directives = (d.split() for d in response["Content-Security-Policy"].split(";"))
    return {d[0]: d[1:] for d in directives if d}


def test_csp_policy_and_nonce(client) -> None:
    """The whole policy, with the same fresh nonce in it and on the page's inline scripts, also on
    pages without a nonce'd tag (the nonce is what makes CSP2 browsers drop `'unsafe-inline'`)."""
    first, second = client.get("/"), client.get("/")
    policy = _policy(first)
    nonce = next(v for v in policy["script-src"] if v.startswith("'nonce-"))
    assert policy == {
        "default-src": ["'self'", nonce, "https://api-js.mixpanel.com"],
        "img-src": [
            "'self'",
            "data:",
            "https://*.hubspot.com",
            "https://*.hsforms.com",
        ],
        "style-src": ["'self'", "'unsafe-inline'"],
        "script-src": [
            "'self'",
            "'unsafe-inline'",
            nonce,
            "https://cdn.mxpnl.com",
            "https://*.hs-scripts.com",
            "https://*.hs-analytics.net",
            "https://*.hs-banner.com",
            "https://*.hscollectedforms.net",
        ],
        "connect-src": ["'self'", "https://api-js.mixpanel.com"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    assert nonce not in second["Content-Security-Policy"]


def test_csp_nonce_in_templates(rf) -> None:
    from django.template import RequestContext, Template

    from firezone.middleware import CSPMiddleware

    request = rf.get("/")
    CSPMiddleware(lambda r: HttpResponse()).process_request(request)
    html = Template('<script nonce="{{ CSP_NONCE }}"></script>').render(RequestContext(request))
    nonce = re.fullmatch(r'<script nonce="([^"]+)"></script>', html)
    assert nonce and nonce[1] == str(request.csp_nonce)


# Without collectstatic there is no STATIC_ROOT, which WhiteNoise says when indexing up front
# (settings.py silences it, but pytest resets warning filters made at start-up).
@pytest.mark.filterwarnings("ignore:No directory at")
@pytest.mark.parametrize("autorefresh", [False, True])
def test_static_files_with_debug_off(autorefresh: bool) -> None:
    """WhiteNoise serves /static/ from the app with DEBUG off, without collectstatic (finders):
    indexed up front as in production, or looked up per request as in tests and development."""
    with override_settings(DEBUG=False, WHITENOISE_AUTOREFRESH=autorefresh):
        client = Client()
        response = client.get("/static/firezone/portal.css")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/css")
        assert isinstance(response, FileResponse) and b"".join(response.streaming_content)
        assert response["Cache-Control"] == "max-age=60, public"
        assert client.get("/static/admin/css/base.css").status_code == 200  # an app's files
        assert client.get("/static/firezone/nope.css").status_code == 404
        assert client.get("/static/../settings.py").status_code == 404
        assert client.get("/static/firezone/../../settings.py").status_code == 404


def test_collected_static_files_with_manifest(tmp_path) -> None:
    """The container's set-up (STATIC_MANIFEST=true): `collectstatic` writes hashed, gzipped
    files, `{% static %}` names them, and WhiteNoise serves them from STATIC_ROOT alone."""
    from django.core.management import call_command
    from django.templatetags.static import static

    manifest = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
    storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    with override_settings(
        DEBUG=False,
        STATIC_ROOT=tmp_path,
        STORAGES={**storages, "staticfiles": manifest},
        WHITENOISE_USE_FINDERS=False,
        WHITENOISE_AUTOREFRESH=False,
    ):
        call_command("collectstatic", interactive=False, verbosity=0)
        url = static("firezone/portal.css")
        assert re.fullmatch(r"/static/firezone/portal\.[0-9a-f]{12}\.css", url)
        response = Client().get(url, HTTP_ACCEPT_ENCODING="gzip")
        assert response.status_code == 200 and response["Content-Encoding"] == "gzip"
        assert "immutable" in response["Cache-Control"]
