"""The form of the "Edit Client" page (portal.md §4.7.3): the client's name.

Only a blank name is caught here; the client services check the length and their errors come
back onto the field through `add_service_errors`.
"""

from __future__ import annotations

from django import forms

from firezone.web.forms import REQUIRED, ServiceErrorsMixin


class ClientForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(
        label="Name",
        error_messages=REQUIRED,
        widget=forms.TextInput(attrs={"placeholder": "Full Name", "autocomplete": "off"}),
    )
