"""Static files served by the app itself (the portal has one stylesheet and a few images), so
`make run` and the container work without a separate file server. Files are found through the
staticfiles finders (or STATIC_ROOT after `collectstatic`), never outside them."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest
from django.utils._os import safe_join
from django.views.decorators.http import require_safe

CACHE_SECONDS = 3600


def _find(path: str) -> str | None:
    if not path or "\x00" in path:
        return None
    try:
        found = finders.find(path)
    except SuspiciousFileOperation:  # "../" outside the static directories
        return None
    if isinstance(found, list):
        found = found[0] if found else None
    if found:
        return str(found)
    root = getattr(settings, "STATIC_ROOT", None)
    if root:
        try:
            candidate = Path(safe_join(str(root), path))
        except SuspiciousFileOperation:  # outside STATIC_ROOT
            return None
        if candidate.is_file():
            return str(candidate)
    return None


@require_safe
def serve_static(request: HttpRequest, path: str) -> FileResponse:
    found = _find(path)
    if found is None or not Path(found).is_file():
        raise Http404("no such file")
    content_type, _ = mimetypes.guess_type(found)
    response = FileResponse(
        open(found, "rb"),  # noqa: SIM115 (FileResponse closes it)
        content_type=content_type or "application/octet-stream",
    )
    response["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    return response
