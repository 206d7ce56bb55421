"""Templates link to the portal's own pages through `{% url %}` (named routes), never by pasting
paths together: `/{{ portal.account_path }}/sites/...`, `{{ base }}/sign_in/...` or
`href="/"`. Routes without a name yet are listed in `UNNAMED` with the reason.

The templates are read as text, so the test needs neither a database nor a request."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.template import engines
from django.urls import NoReverseMatch, reverse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"

# A quoted attribute value (href, action, src, hx-*, data-*) that starts an internal path by hand:
# "/" followed by a template variable or a letter (an absolute path of this site), or a variable
# followed by "/" (a base URL with a path pasted on). `{% static %}`/`{% url %}` never match.
HAND_BUILT = re.compile(
    r"""(?:href|action|src|hx-[a-z]+|data-[a-z-]+)="(?:/(?:\{\{|[a-z_]|")|\{\{[^}]*\}\}/)"""
)

# Routes that have no name in the URL confs yet (left as they are; see the commit message).
UNNAMED: set[tuple[str, str]] = set()


def _templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*.html") if "emails" not in p.parts)


@pytest.mark.parametrize("path", _templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_hand_built_internal_urls(path: Path) -> None:
    rel = str(path.relative_to(TEMPLATES))
    offending = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        for match in HAND_BUILT.finditer(line):
            tail = line[match.end() :].split('"', 1)[0]
            if any(rel == name and marker in tail for name, marker in UNNAMED):
                continue
            offending.append(f"{rel}:{lineno}: {line[match.start() : match.end() + 40]}")
    assert not offending, "build these with {% url %}:\n" + "\n".join(offending)


def test_templates_compile() -> None:
    """Every `{% url %}` argument list parses (a typo in a route name fails at render time)."""
    engine = engines["django"]
    for path in _templates():
        engine.get_template(str(path.relative_to(TEMPLATES)))


def test_route_names_used_by_templates_exist() -> None:
    names = set()
    for path in _templates():
        names.update(re.findall(r"\{% url '([a-z_]+)'", path.read_text()))
    assert names, "no {% url %} found: is the pattern out of date?"
    missing = []
    for name in sorted(names):
        try:
            reverse(name)
        except NoReverseMatch as exc:
            # Arguments are missing on purpose; only an unknown name is an error.
            if "is not a valid view function or pattern name" in str(exc):
                missing.append(name)
    assert not missing, f"unknown route names in templates: {missing}"
