"""Development and test pages (portal.md §1.5): `/dev/mailbox` (+ `/json`) lists the emails the
app sent (the dev console backend keeps them; in tests, Django's locmem outbox), and
`/error/<code>` renders the 404 / 500 pages. Routed only with DEBUG (or under tests), and every
view checks again."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from firezone.error_views import render_error
from firezone.mail import mailbox as stored_mailbox


def _enabled() -> None:
    if not (settings.DEBUG or getattr(settings, "TESTING", False)):
        raise Http404("development only")


def _messages() -> list[dict[str, Any]]:
    from django.core import mail

    outbox = getattr(mail, "outbox", None)
    if outbox is not None:  # locmem backend (tests)
        found = []
        for message in reversed(outbox):
            html = next(
                (c for c, t in getattr(message, "alternatives", None) or () if t == "text/html"),
                None,
            )
            found.append(
                {
                    "subject": message.subject,
                    "from": message.from_email,
                    "to": list(message.to),
                    "text": message.body,
                    "html": html,
                }
            )
        return found
    return stored_mailbox()


@require_GET
def mailbox_view(request: HttpRequest) -> HttpResponse:
    _enabled()
    return render(
        request, "dev/mailbox.html", {"page_title": "Mailbox", "messages_sent": _messages()}
    )


@require_GET
def mailbox_json(request: HttpRequest) -> JsonResponse:
    _enabled()
    return JsonResponse({"data": _messages()})


@require_GET
def error(request: HttpRequest, code: str) -> HttpResponse:
    _enabled()
    if code not in ("404", "500"):
        raise Http404("unknown error page")
    return render_error(request, int(code))
