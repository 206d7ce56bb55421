"""No third-party request by default (Gravatar only with GRAVATAR_ENABLED), and icons as inline SVG
rather than emoji (firezone.icons); tests/test_browser_privacy.py checks the rendered pages."""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import pytest
from django.http import HttpResponse
from django.template import Context, Template
from django.test import Client

from accounts.tests.portal import ADMIN_EMAIL, UA, inject_session, make_acme
from firezone.icons import ICONS, icon
from firezone.web.client_os import os_of

ROOT = Path(__file__).resolve().parents[1]

# A superset of Unicode's Extended_Pictographic (emoji and pictographs; Python's `re` has no
# \p{…}): the characters that must not serve as icons.
PICTOGRAPHIC = re.compile(
    "[\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u2388"
    "\u23cf\u23e9-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u27bf\u2934\u2935"
    "\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299\U0001f000-\U0001faff"
    "\U0001fc00-\U0001fffd]"
)
_PY_ESCAPE = re.compile(r"\\U([0-9a-fA-F]{8})|\\u([0-9a-fA-F]{4})")


def _decoded(path: Path) -> str:
    """The file's text with HTML character references (and Python escapes) decoded."""
    text = path.read_text()
    if path.suffix == ".py":
        text = _PY_ESCAPE.sub(lambda m: chr(int(m[1] or m[2], 16)), text)
    return html.unescape(text)


def _rendering_files() -> list[Path]:
    """Templates, static JS/CSS, and the Python modules that build page content."""
    files = [*ROOT.glob("templates/**/*.html")]
    files += [p for p in ROOT.glob("*/static/**/*") if p.suffix in (".js", ".css")]
    for pattern in ("*/views/**/*.py", "*/*views.py", "*/web/**/*.py", "*/templatetags/*.py"):
        files += ROOT.glob(pattern)
    files += [ROOT / "firezone" / "icons.py"]
    return sorted(p for p in files if ".venv" not in p.parts and "tests" not in p.parts)


def test_no_pictographic_characters_in_what_renders_pages() -> None:
    files = _rendering_files()
    assert {"_identity_chip.html", "clients.py", "portal.css"} <= {p.name for p in files}
    found = []
    for path in files:
        for number, line in enumerate(_decoded(path).splitlines(), start=1):
            if PICTOGRAPHIC.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def test_icons_are_inline_svg() -> None:
    decorative = icon("warning")
    assert decorative.startswith('<svg class="icon icon-warning" width="16" height="16"')
    assert 'aria-hidden="true"' in decorative and "<title>" not in decorative
    labelled = icon("os-windows", label="Microsoft <Windows>", size=18)
    assert 'role="img" aria-label="Microsoft &lt;Windows&gt;"' in labelled
    assert "<title>Microsoft &lt;Windows&gt;</title>" in labelled and 'width="18"' in labelled
    with pytest.raises(KeyError):
        icon("no-such-icon")
    rendered = Template('{% load icons %}{% icon "key" size=14 css="x" %}').render(Context())
    assert rendered.startswith('<svg class="icon icon-key x" width="14" height="14"')
    for name in ICONS:
        assert not PICTOGRAPHIC.search(icon(name))


@pytest.mark.parametrize(
    "user_agent",
    ["Windows/10.0.22631 connlib/1.5.0", "Mac OS/14.1.2 connlib/1.2.1", "iOS/12.7 (iPhone) x",
     "Android/14 x", "Ubuntu/22.4.0 x", "Debian/12 x", "Manjaro/1 x", "Linux/6.1 x", "", "Haiku/1"],
)  # fmt: skip
def test_every_client_os_has_an_svg_icon(user_agent: str) -> None:
    assert os_of(user_agent).icon.startswith("<svg ")  # clients list, actors list, actor page


def test_client_os_names_may_hold_spaces() -> None:
    mac = os_of("Mac OS/14.5 connlib/0.7.412")
    assert (mac.kind, mac.version) == ("macos", "14.5") and "icon-os-macos" in mac.icon
    assert os_of("iOS/12.7 (iPhone) connlib/1.5.0").label == "Apple iOS 12.7"
    assert "icon-os-other" in os_of(None).icon and "icon-os-other" in os_of("Haiku/1 x").icon


def _admin_page() -> HttpResponse:
    client = Client(HTTP_USER_AGENT=UA)
    inject_session(client, make_acme().admin_identity)
    response = client.get("/acme/settings/account")
    assert response.status_code == 200 and isinstance(response, HttpResponse)
    return response


@pytest.mark.django_db
def test_no_gravatar_by_default() -> None:
    response = _admin_page()
    assert b"gravatar" not in response.content
    assert b'<span class="avatar">A</span>' in response.content  # the initials of "Admin"
    assert "gravatar" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_gravatar_when_enabled(settings) -> None:
    settings.GRAVATAR_ENABLED = True
    response = _admin_page()
    digest = hashlib.md5(ADMIN_EMAIL.encode(), usedforsecurity=False).hexdigest()
    gravatar = f"https://www.gravatar.com/avatar/{digest}?s=80&amp;d=blank"
    assert f"background-image: url('{gravatar}')".encode() in response.content
    directives = dict(
        d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";")
    )
    assert "https://www.gravatar.com" in directives["img-src"].split()
