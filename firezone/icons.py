"""Inline SVG icons for the admin pages: no emoji (they are empty boxes without an emoji font) and
no icon font or CDN. Outline icons on a 24x24 grid drawn with `currentColor`, like the inline
icons of the templates; in templates `{% load icons %}{% icon "warning" %}`, in Python `icon(…)`.
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

_DOT = 'fill="currentColor" stroke="none"'

ICONS: dict[str, str] = {
    "envelope": '<rect x="3" y="5" width="18" height="14" rx="2"/><path d="M3 7l9 6 9-6"/>',
    "key": '<circle cx="8" cy="15" r="4"/><path d="M10.8 12.2L20 3m-3 3l3 3m-6 0l3 3"/>',
    "lock": '<rect x="5" y="11" width="14" height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/>',
    "shield-check": (
        '<path d="M12 3l7 3v6c0 4.5-3 7.5-7 9-4-1.5-7-4.5-7-9V6l7-3z"/><path d="M9 12l2 2 4-4"/>'
    ),
    "sync": (
        '<path d="M4 4v6h6M20 20v-6h-6"/>'
        '<path d="M19.1 9A8 8 0 0 0 5.6 6.6L4 10m16 4-1.6 3.4A8 8 0 0 1 4.9 15"/>'
    ),
    "warning": '<path d="M12 3.5 2.5 20h19L12 3.5z"/><path d="M12 10v4.5M12 17.5v.01"/>',
    "external-link": (
        '<path d="M14 4h6v6M20 4l-9 9"/>'
        '<path d="M18 14v5a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1h5"/>'
    ),
    "check-circle": '<circle cx="12" cy="12" r="9"/><path d="M8 12.5l2.8 2.8L16 9.5"/>',
    "x-circle": '<circle cx="12" cy="12" r="9"/><path d="M9 9l6 6M15 9l-6 6"/>',
    "arrow-up-circle": (
        '<circle cx="12" cy="12" r="9"/><path d="M12 16.5v-9M8.5 11 12 7.5l3.5 3.5"/>'
    ),
    # Operating systems of clients (gateways.views.clients.OperatingSystem.kind).
    "os-windows": (
        f'<path {_DOT} d="M3 5.6l7.5-1.1v7H3zM12 4.3 21 3v8.5h-9zM3 12.5h7.5v7L3 18.4z'
        'M12 12.5h9V21l-9-1.3z"/>'
    ),
    "os-macos": (
        '<path d="M12 8.2c-1.2-.9-2.4-1.2-3.6-1C6.2 7.6 5 9.6 5 12.3 5 16 7.4 20.5 9.5 20.5'
        "c1 0 1.4-.6 2.5-.6s1.5.6 2.5.6c2.1 0 4.5-4.5 4.5-8.2 0-2.7-1.2-4.7-3.4-5.1"
        '-1.2-.2-2.4.1-3.6 1z"/><path d="M12 8c0-2.2 1-3.8 3-4.5"/>'
    ),
    "os-ios": '<rect x="6.5" y="2.5" width="11" height="19" rx="2.5"/><path d="M11 18.5h2"/>',
    "os-android": (
        '<path d="M3.5 18a8.5 8.5 0 0 1 17 0z"/><path d="M7.5 10.8 5.7 7.6M16.5 10.8l1.8-3.2"/>'
        f'<circle {_DOT} cx="9" cy="14.5" r="1.1"/><circle {_DOT} cx="15" cy="14.5" r="1.1"/>'
    ),
    "os-ubuntu": (
        '<circle cx="12" cy="12" r="5"/>'
        f'<circle {_DOT} cx="4.5" cy="12" r="2.2"/><circle {_DOT} cx="15.8" cy="5.5" r="2.2"/>'
        f'<circle {_DOT} cx="15.8" cy="18.5" r="2.2"/>'
    ),
    "os-debian": (
        '<path d="M13.5 12.3a1.6 1.6 0 1 1-1.1-2.4 3 3 0 0 1 3 3.4 4.5 4.5 0 0 1-5.5 3.5'
        ' 6 6 0 0 1-4.3-6.9A7 7 0 0 1 19 8.5"/>'
    ),
    "os-manjaro": f'<path {_DOT} d="M4 4h10v5H4zM4 11h4v9H4zM10 11h4v9h-4zM16 4h4v16h-4z"/>',
    "os-linux": (
        '<path d="M12 3C9.6 3 8.6 5 8.6 7.4c0 1.6-.6 2.6-1.6 4.1s-2 3.7-1.5 6'
        'S8 21 12 21s6-1.2 6.5-3.5-.5-4.5-1.5-6-1.6-2.5-1.6-4.1C15.4 5 14.4 3 12 3z"/>'
        f'<circle {_DOT} cx="10.5" cy="7.5" r=".9"/><circle {_DOT} cx="13.5" cy="7.5" r=".9"/>'
        '<path d="M10.8 10 12 10.9l1.2-.9"/>'
    ),
    "os-other": '<rect x="3" y="4" width="18" height="12" rx="2"/><path d="M8 20h8M12 16v4"/>',
}


def icon(name: str, *, label: str = "", size: int = 16, css: str = "") -> SafeString:
    """An inline `<svg>`: decorative (aria-hidden) unless `label` is given, then role="img"
    with a <title>. An unknown name is an error (a typo must not render nothing)."""
    body = mark_safe(ICONS[name])  # noqa: S308 (constant markup above)
    classes = f"icon icon-{name} {css}".strip()
    if label:
        return format_html(
            '<svg class="{}" width="{}" height="{}" viewBox="0 0 24 24" fill="none" '
            'stroke="currentColor" stroke-width="2" stroke-linecap="round" '
            'stroke-linejoin="round" role="img" aria-label="{}"><title>{}</title>{}</svg>',
            classes, size, size, label, label, body,
        )  # fmt: skip
    return format_html(
        '<svg class="{}" width="{}" height="{}" viewBox="0 0 24 24" fill="none" '
        'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" '
        'aria-hidden="true" focusable="false">{}</svg>',
        classes, size, size, body,
    )  # fmt: skip
