"""The one event dispatch of the portal's interactive pages (portal.md §4; see `pages`): a POST
carries an `action` field naming the event, the page answers with a redirect and a flash.

    handler of the action → its response, or back to the page (`here`) when it gives none
      · `Refused` / `Unauthorized` → an error flash, back to the page (`refusal_message`)
      · no handler for the action (or none posted) → back to the page, or the standard 404 on
        `strict` pages

Pages offer an event by putting its handler in `handlers`: events an object does not have
(deleting the Internet site, syncing a provider without directory sync) are simply left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from firezone.errors import Refused, Unauthorized
from firezone.web.edit import refusal_message
from firezone.web.pages import action_of, redirect_error
from firezone.web.session import not_found

# A page event: the response to send (a redirect with a flash, usually), or None for "back to
# the page, no flash".
Handler = Callable[[], HttpResponse | None]


def page_events(
    request: HttpRequest,
    *,
    here: str,
    handlers: Mapping[str, Handler],
    strict: bool = False,
) -> HttpResponse:
    """Answer the event a POST carries with its handler (see the module docstring)."""
    handler = handlers.get(action_of(request))
    if handler is None:
        return not_found(request) if strict else HttpResponseRedirect(here)
    try:
        response = handler()
    except (Refused, Unauthorized) as exc:
        return redirect_error(request, here, refusal_message(exc))
    return HttpResponseRedirect(here) if response is None else response
