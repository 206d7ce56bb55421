"""Component versions: parsing them from user agents and comparing them (domain.md §2.8, §2.10)."""

from __future__ import annotations

import re

# The first user-agent token with one of these prefixes carries the component's version.
COMPONENT_PREFIXES = (
    "relay/",
    "connlib/",
    "headless-client/",
    "gui-client/",
    "apple-client/",
    "android-client/",
    "gateway/",
)

_SEMVER = re.compile(
    r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


def parse_version(user_agent: str | None) -> str | None:
    """The version of the first component token of a user agent, or None if it has none."""
    for token in (user_agent or "").split(" "):
        for prefix in COMPONENT_PREFIXES:
            if token.startswith(prefix) and len(token) > len(prefix):
                return token[len(prefix) :]
    return None


def version_key(version: str | None) -> tuple | None:
    """A sortable key for a semantic version (pre-releases sort before the release), or None."""
    match = _SEMVER.match(version or "")
    if match is None:
        return None
    pre = match["pre"]
    # (major, minor, patch, is_release, pre-release identifiers)
    pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in (pre or "").split("."))
    return (int(match["major"]), int(match["minor"]), int(match["patch"]), pre is None, pre_key)


def release_key(version: str) -> tuple:
    """`version_key` of a version written in the code (a threshold): a typo fails at import."""
    key = version_key(version)
    if key is None:
        raise ValueError(f"not a semantic version: {version!r}")
    return key
