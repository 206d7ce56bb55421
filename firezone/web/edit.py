"""The one edit page of the portal (portal.md §4: "forms post to their own page and re-render
with errors"): every new/edit page is a form, a service call and a page around them.

    form from POST or initial → on a valid POST call the service (`save`)
      · `ValidationFailed` → the messages go on the form's fields (`add_service_errors`)
      · `Refused` / `Unauthorized` → an error flash, the form is shown again as typed
      · success → redirect (optionally with an info flash), or a response of the view's own
    → render the template with the page's context and the form.

Views stay thin: they build the form, say what saving means and what the page shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from firezone.errors import Refused, Unauthorized, ValidationFailed
from firezone.web.forms import ServiceErrorsMixin
from firezone.web.pages import render_secret

F = TypeVar("F", bound=ServiceErrorsMixin)

# What `save` answers: the URL to go to, a response of its own, or None to show the page again
# (pages that display what was just created, such as a token shown once).
Saved = str | HttpResponse | None
Context = Mapping[str, Any] | Callable[[F], Mapping[str, Any]]

MSG_FORBIDDEN = "You don't have permissions to perform this action."


def refusal_message(exc: Refused | Unauthorized) -> str:
    """The flash of a refused change: a missing permission reads the same on every page (also
    for read-only objects such as global relays); other refusals (last admin, plan limit…)
    carry their own sentence."""
    return MSG_FORBIDDEN if isinstance(exc, Unauthorized) else exc.message


def edit_page(
    request: HttpRequest,
    form: F,
    *,
    template: str,
    context: Context[F],
    save: Callable[[F], Saved],
    saved_message: str = "",
    submitted: bool | None = None,
    secret: bool = False,
) -> HttpResponse:
    """Run one new/edit page.

    `submitted` defaults to "a POST" (pages with re-render-only events or validate-as-you-type
    pass False for those); the form must then also be valid (`is_valid()` when it has one).
    `context` may be a callable of the form, for pages whose surroundings depend on what was
    typed. `secret` pages are never cached (render_secret)."""
    if submitted is None:
        submitted = request.method == "POST"
    is_valid = getattr(form, "is_valid", None)
    if submitted and (is_valid is None or is_valid()):
        try:
            result = save(form)
        except ValidationFailed as exc:
            form.add_service_errors(exc)
        except (Refused, Unauthorized) as exc:
            messages.error(request, refusal_message(exc))
        else:
            if isinstance(result, HttpResponse):
                return result
            if result is not None:
                if saved_message:
                    messages.info(request, saved_message)
                return HttpResponseRedirect(result)
    extra = context(form) if callable(context) else context
    page = {**extra, "form": form}
    return render_secret(request, template, page) if secret else render(request, template, page)
