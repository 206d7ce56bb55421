"""Forms of the gateways admin pages. They only carry input: the services validate it (lengths,
uniqueness, limits) and their `ValidationFailed` errors are put back on the form."""

from __future__ import annotations

from typing import Any

from django import forms

from firezone.web.forms import ServiceErrorsMixin


class SiteForm(ServiceErrorsMixin, forms.Form):
    """New / Edit Site (portal.md §4.1.2-§4.1.3). A blank name on creation means "generate
    one"; the service checks 1-64 characters and uniqueness."""

    name = forms.CharField(label="Name", required=False, strip=True)

    def __init__(self, *args: Any, placeholder: str = "Enter a name for this Site", **kw: Any):
        super().__init__(*args, **kw)
        self.fields["name"].widget.attrs.update(
            {"placeholder": placeholder, "class": "input", "autocomplete": "off"}
        )
