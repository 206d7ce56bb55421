"""`{% icon "name" %}`: the inline SVG icons of firezone.icons (`label=`, `size=`, `css=`)."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from firezone.icons import icon as _icon

register = template.Library()


@register.simple_tag(name="icon")
def icon(name: str, label: str = "", size: int = 16, css: str = "") -> SafeString:
    return _icon(name, label=label, size=int(size), css=css)
