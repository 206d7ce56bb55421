"""Forms of the group pages (portal.md §4.6): the name of a new or renamed static group.

The form only catches a blank name; the group services own the rules (length, uniqueness) and
their errors come back onto the field through `add_service_errors`.
"""

from __future__ import annotations

from typing import Any

from django import forms

from firezone.web.forms import REQUIRED, ServiceErrorsMixin


class GroupForm(ServiceErrorsMixin, forms.Form):
    """ "Group Name" on the new group page, "Name" on the edit page."""

    name = forms.CharField(error_messages=REQUIRED)

    def __init__(self, *args: Any, label: str, placeholder: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["name"]
        field.label = label
        field.widget.attrs.update({"placeholder": placeholder, "autocomplete": "off"})
