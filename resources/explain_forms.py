"""The "Check access" form of the actor and resource pages (issue 18 item 6).

A GET form, so an answer is a link an admin can share. It only shapes input for
`resources.explain.access_explain`: which actor/client and resource (ids, resolved by the page
through the account-scoped selectors, so another account's ids are the 404 page), and the
optional context that overrides the client's last seen one (time, location, remote IP, sign-in
provider, verification). Every bad input is a form error, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from django import forms
from django.http import QueryDict

from accounts.auth import Subject
from accounts.models import Actor
from accounts.selectors.actors import actor_list
from accounts.selectors.providers import provider_list
from firezone.web.forms import REQUIRED
from gateways.selectors.clients import client_list, client_list_for_actor
from resources.policy_forms import DEFAULT_TIMEZONE, country_options, timezone_options
from resources.selectors.resources import resource_list

# Which page the form is on: the actor page picks the resource, the resource page the actor.
ACTOR_PAGE: Final = "actor"
RESOURCE_PAGE: Final = "resource"

# Query keys of the form: any of them in the query means "check".
FIELDS: Final = (
    "resource_id",
    "actor_id",
    "client_id",
    "at",
    "timezone",
    "location",
    "remote_ip",
    "provider_id",
    "verified",
)
# At most this many clients are offered on the resource page (most recently seen first); any
# client of the account still answers through `?client_id=`.
CLIENT_CHOICES_LIMIT: Final = 500

DATETIME_FORMATS: Final = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
MSG_DATETIME: Final = "is not a valid date and time"
MSG_PICK_ACTOR: Final = "Pick an actor or one of its clients"
MSG_NOT_ACTORS_CLIENT: Final = "is not a client of this actor"

VERIFIED_CHOICES: Final = [
    ("", "Default (the client's)"),
    ("yes", "Verified"),
    ("no", "Not verified"),
]


def _select(choices: Iterable[tuple[str, str]], blank: str) -> forms.Select:
    return forms.Select(choices=[("", blank), *choices])


class AccessCheckForm(forms.Form):
    """Ids are plain text fields (rendered as selects): the page resolves them with the scoped
    selectors, so an id of another account is "not found", not "not a valid choice"."""

    resource_id = forms.CharField(label="Resource", required=False)
    actor_id = forms.CharField(label="Actor", required=False)
    client_id = forms.CharField(label="Client", required=False)
    at = forms.CharField(
        label="Time",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "60"}),
        help_text="Default: now.",
    )
    timezone = forms.ChoiceField(label="Time zone", required=False)
    location = forms.ChoiceField(
        label="Client location",
        required=False,
        error_messages={"invalid_choice": "%(value)s is not a known country"},
        help_text="Default: the country of the client's last seen address.",
    )
    remote_ip = forms.GenericIPAddressField(
        label="Remote IP",
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "E.g. 203.0.113.7", "autocomplete": "off"}),
        help_text="Default: the client's last seen address.",
    )
    provider_id = forms.ChoiceField(
        label="Sign-in provider",
        required=False,
        error_messages={"invalid_choice": "is not an identity provider of this account"},
        help_text="Default: the provider the client signed in with.",
    )
    verified = forms.ChoiceField(label="Verified client", required=False, choices=VERIFIED_CHOICES)

    def __init__(
        self,
        data: QueryDict | None,
        *,
        page: str,
        resources: Iterable[Any] = (),
        actors: Iterable[Any] = (),
        clients: Iterable[Any] = (),
        providers: Iterable[Any] = (),
    ) -> None:
        # Unbound until the query names any field (the page opened without a question).
        bound = data is not None and any(key in data for key in FIELDS)
        super().__init__(data if bound else None, initial={"timezone": DEFAULT_TIMEZONE})
        self.page = page
        self.fields["resource_id"].widget = _select(
            ((str(r.pk), r.name) for r in resources), "Pick a resource"
        )
        self.fields["actor_id"].widget = _select(
            ((str(a.pk), a.name) for a in actors), "Pick an actor"
        )
        client_blank = "Default (the last seen client)"
        client_choices = (
            (str(c.pk), c.name if page == ACTOR_PAGE else f"{c.name} ({c.actor.name})")
            for c in clients
        )
        self.fields["client_id"].widget = _select(client_choices, client_blank)
        self._choices("timezone", [(z, z) for z in timezone_options()])
        self._choices("location", [("", "Default (last seen)"), *country_options()])
        providers = list(providers)
        # Provider condition values are ids: the answer shows them by name.
        self.provider_names = {str(p.pk): p.name for p in providers}
        self._choices(
            "provider_id",
            [
                ("", "Default (last sign-in)"),
                *((str(p.pk), p.name) for p in providers),
            ],
        )
        for field in self.fields.values():
            field.widget.attrs.setdefault("class", "input")
        if page == ACTOR_PAGE:
            self.fields["resource_id"].required = True
            self.fields["resource_id"].error_messages.update(REQUIRED)
            del self.fields["actor_id"]

    def _choices(self, name: str, choices: list[tuple[str, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean_at(self) -> datetime | None:
        text = (self.cleaned_data.get("at") or "").strip()
        if not text:
            return None
        for fmt in DATETIME_FORMATS:
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
        raise forms.ValidationError(MSG_DATETIME)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        at = data.get("at")
        if at is not None:
            data["at"] = at.replace(tzinfo=ZoneInfo(data.get("timezone") or DEFAULT_TIMEZONE))
        if self.page == RESOURCE_PAGE and not data.get("actor_id") and not data.get("client_id"):
            self.add_error("actor_id", MSG_PICK_ACTOR)
        return data

    def not_actors_client(self) -> None:
        """The picked client belongs to another actor of the account."""
        self.add_error("client_id", MSG_NOT_ACTORS_CLIENT)

    def context_kwargs(self) -> dict[str, Any]:
        """The optional context of `access_explain` (None: the client's last seen value)."""
        data = self.cleaned_data
        return {
            "at": data.get("at"),
            "location": data.get("location") or None,
            "remote_ip": data.get("remote_ip") or None,
            "provider_id": data.get("provider_id") or None,
            "verified": {"yes": True, "no": False}.get(data.get("verified") or ""),
        }


# --- the form of each page, with the account's choices --------------------------------------------


def access_form_for_actor(
    subject: Subject, *, actor: Actor, data: QueryDict | None
) -> AccessCheckForm:
    return AccessCheckForm(
        data,
        page=ACTOR_PAGE,
        resources=resource_list(subject),
        clients=client_list_for_actor(subject, actor_id=actor.pk),
        providers=provider_list(subject),
    )


def access_form_for_resource(subject: Subject, *, data: QueryDict | None) -> AccessCheckForm:
    actors = actor_list(
        subject,
        type=[Actor.Type.ACCOUNT_USER, Actor.Type.ACCOUNT_ADMIN_USER, Actor.Type.SERVICE_ACCOUNT],
    )
    return AccessCheckForm(
        data,
        page=RESOURCE_PAGE,
        actors=actors,
        clients=client_list(subject)[:CLIENT_CHOICES_LIMIT],
        providers=provider_list(subject),
    )
