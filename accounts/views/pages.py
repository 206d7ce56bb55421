"""Small pages: `/browser/config.xml` (route 4) and the `/<account>/...` fallback."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from accounts.models import Account
from firezone.web.session import admin_required, not_found

BROWSERCONFIG = """<?xml version="1.0" encoding="utf-8"?>
<browserconfig>
  <msapplication>
    <tile>
      <square150x150logo src="/images/mstile-150x150.png"/>
      <TileColor>#331700</TileColor>
    </tile>
  </msapplication>
</browserconfig>
"""


@require_GET
def browserconfig(request: HttpRequest) -> HttpResponse:
    return HttpResponse(BROWSERCONFIG, content_type="application/xml")


@require_GET
@admin_required
def admin_fallback(request: HttpRequest, account: Account, rest: str) -> HttpResponse:
    """Any other `/<account>/...` page: signed-out visitors are sent to sign in (with the path
    to come back to, §1.1) and admins get the standard 404. Routed last (firezone/urls.py)."""
    return not_found(request)
