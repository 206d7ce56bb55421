"""The portal's one page-event dispatch (firezone.web.events): no database, fake handlers."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from firezone.errors import Refused, Unauthorized
from firezone.web.edit import MSG_FORBIDDEN
from firezone.web.events import page_events

HERE = "/acme/things/1"


def _post(action: str | None) -> HttpRequest:
    request = RequestFactory().post(HERE, {"action": action} if action is not None else {})
    request._messages = CookieStorage(request)  # type: ignore[attr-defined]
    return request


def _flashes(request: HttpRequest) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(request)]


def test_the_handler_of_the_action_answers() -> None:
    request = _post("delete")
    response = page_events(request, here=HERE, handlers={"delete": lambda: HttpResponse("gone")})
    assert response.content == b"gone"


def test_a_handler_without_response_goes_back_to_the_page() -> None:
    done: list[str] = []
    request = _post("verify")
    response = page_events(request, here=HERE, handlers={"verify": lambda: done.append("v")})
    assert (response.status_code, response["Location"], done) == (302, HERE, ["v"])
    assert _flashes(request) == []


@pytest.mark.parametrize(
    ("error", "flash"),
    [
        (Refused("This is the last admin."), "This is the last admin."),
        (Unauthorized(), MSG_FORBIDDEN),
    ],
)
def test_refusals_flash_and_go_back(error: Exception, flash: str) -> None:
    def refuse() -> None:
        raise error

    request = _post("delete")
    response = page_events(request, here=HERE, handlers={"delete": refuse})
    assert (response.status_code, response["Location"]) == (302, HERE)
    assert _flashes(request) == [("error", flash)]


@pytest.mark.parametrize("action", ["nope", None])
def test_unknown_events_go_back_or_are_not_found_on_strict_pages(action: str | None) -> None:
    handlers = {"delete": lambda: HttpResponse("gone")}
    response = page_events(_post(action), here=HERE, handlers=handlers)
    assert (response.status_code, response["Location"]) == (302, HERE)
    assert page_events(_post(action), here=HERE, handlers=handlers, strict=True).status_code == 404
