"""The portal's one edit page (firezone.web.edit) and one service-error mapper (firezone.web.forms):
no database, a plain Django form and a fake service."""

from __future__ import annotations

from typing import Any, NoReturn

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from firezone.errors import Refused, Unauthorized, ValidationFailed
from firezone.web import edit
from firezone.web.edit import MSG_FORBIDDEN, edit_page, refusal_message
from firezone.web.forms import ServiceErrorsMixin


class NameForm(ServiceErrorsMixin, forms.Form):
    SERVICE_FIELDS = {"display_name": "name"}
    ERROR_LABELS = {"slug": "Account slug"}

    name = forms.CharField()


def _never_saved(form: Any) -> NoReturn:
    pytest.fail("the form was saved")


def _request(method: str = "get", data: dict[str, str] | None = None) -> HttpRequest:
    request = getattr(RequestFactory(), method)("/acme/things/new", data or {})
    request._messages = CookieStorage(request)
    return request


def _flashes(request: HttpRequest) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(request)]


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The contexts pages are rendered with (no template needed)."""
    seen: list[dict[str, Any]] = []

    def fake_render(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
        seen.append({"template": template, **context})
        return HttpResponse("page")

    monkeypatch.setattr(edit, "render", fake_render)
    return seen


# --- ServiceErrorsMixin ----------------------------------------------------------------------


def test_service_errors_go_on_fields_renamed_or_labelled() -> None:
    form = NameForm({"name": "x"})
    assert form.is_valid()
    form.add_service_errors(
        {
            "display_name": ["is taken"],
            "slug": ["is reserved"],
            "legal_name": ["can't be blank"],
            "__all__": ["Something is off"],
        }
    )
    assert form.errors["name"] == ["is taken"]
    assert form.non_field_errors() == [
        "Account slug is reserved",
        "Legal name can't be blank",
        "Something is off",
    ]


def test_service_errors_accept_the_exception_itself() -> None:
    form = NameForm({"name": "x"})
    form.is_valid()
    form.add_service_errors(ValidationFailed("is invalid", field="name"))
    assert form.errors["name"] == ["is invalid"]


def test_refusal_messages() -> None:
    assert refusal_message(Refused("Last admin")) == "Last admin"
    assert refusal_message(Unauthorized(reason="missing_permissions")) == MSG_FORBIDDEN
    assert refusal_message(Unauthorized("Global relays cannot be deleted.")) == MSG_FORBIDDEN


# --- edit_page -------------------------------------------------------------------------------


def test_get_renders_the_form_with_the_context(rendered: list[dict[str, Any]]) -> None:
    request = _request()
    form = NameForm(None)
    response = edit_page(
        request, form, template="t.html", context={"page_title": "New"}, save=lambda f: "/x"
    )
    assert response.status_code == 200
    assert rendered == [{"template": "t.html", "page_title": "New", "form": form}]


def test_valid_post_saves_and_redirects_with_the_flash(rendered: list[dict[str, Any]]) -> None:
    request = _request("post", {"name": "Eng"})
    saved: list[str] = []

    def save(form: NameForm) -> str:
        saved.append(form.cleaned_data["name"])
        return "/acme/things/1"

    response = edit_page(
        request,
        NameForm(request.POST),
        template="t.html",
        context={},
        save=save,
        saved_message="Saved!",
    )
    assert (response.status_code, response["Location"]) == (302, "/acme/things/1")
    assert saved == ["Eng"]
    assert _flashes(request) == [("info", "Saved!")]
    assert rendered == []


def test_invalid_post_never_calls_the_service(rendered: list[dict[str, Any]]) -> None:
    request = _request("post", {})
    response = edit_page(
        request, NameForm(request.POST), template="t.html", context={}, save=_never_saved
    )
    assert response.status_code == 200
    assert rendered[0]["form"].errors["name"]


def test_validation_failed_goes_on_the_form(rendered: list[dict[str, Any]]) -> None:
    request = _request("post", {"name": "Eng"})

    def save(form: NameForm) -> str:
        raise ValidationFailed({"display_name": ["is taken"]})

    edit_page(request, NameForm(request.POST), template="t.html", context={}, save=save)
    assert rendered[0]["form"].errors["name"] == ["is taken"]
    assert _flashes(request) == []


@pytest.mark.parametrize(
    ("error", "flash"),
    [
        (Refused("Seats limit reached."), "Seats limit reached."),
        (Unauthorized(reason="missing_permissions"), MSG_FORBIDDEN),
    ],
)
def test_refusals_are_flashed(rendered: list[dict[str, Any]], error: Exception, flash: str) -> None:
    request = _request("post", {"name": "Eng"})

    def save(form: NameForm) -> str:
        raise error

    response = edit_page(request, NameForm(request.POST), template="t.html", context={}, save=save)
    assert response.status_code == 200
    assert _flashes(request) == [("error", flash)]


def test_save_may_answer_or_stay(rendered: list[dict[str, Any]]) -> None:
    request = _request("post", {"name": "Eng"})
    own = HttpResponse("consent", status=200)
    assert (
        edit_page(request, NameForm(request.POST), template="t", context={}, save=lambda f: own)
        is own
    )
    context: dict[str, Any] = {"token": None}

    def save(form: NameForm) -> None:
        context["token"] = "secret"  # shown once, on this page

    edit_page(
        request,
        NameForm(request.POST),
        template="t",
        context=lambda form: dict(context),
        save=save,
    )
    assert rendered[-1]["token"] == "secret"


def test_not_submitted_posts_only_render(rendered: list[dict[str, Any]]) -> None:
    request = _request("post", {"name": "Eng"})
    edit_page(
        request,
        NameForm(request.POST),
        template="t",
        context={},
        save=_never_saved,
        submitted=False,
    )
    assert len(rendered) == 1
