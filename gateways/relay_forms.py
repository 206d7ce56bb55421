"""Forms of the relay group pages (portal.md §4.8.2, §4.8.4)."""

from __future__ import annotations

from django import forms

from firezone.web.forms import REQUIRED, ServiceErrorsMixin
from gateways.services.relays import RELAY_GROUP_NAME_MAX_LENGTH


class RelayGroupForm(ServiceErrorsMixin, forms.Form):
    """The "Name Prefix": 1-64 characters, unique in the account (the service checks that)."""

    name = forms.CharField(
        label="Name Prefix",
        max_length=RELAY_GROUP_NAME_MAX_LENGTH,
        error_messages={
            **REQUIRED,
            "max_length": f"should be at most {RELAY_GROUP_NAME_MAX_LENGTH} character(s)",
        },
        widget=forms.TextInput(
            attrs={"placeholder": "Name of this Relay Instance Group", "autocomplete": "off"}
        ),
    )
