"""A client's operating system from its user agent, with its icon: one rule for the clients list,
the client page and the actor pages (the first "<name>/<version>" token, e.g.
"Mac OS/14.5 connlib/0.7.412"; the name may hold spaces)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from firezone.icons import icon


@dataclass(frozen=True)
class OperatingSystem:
    kind: str  # icon: windows, macos, ios, android, ubuntu, debian, manjaro, linux, other
    name: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}".strip()

    @property
    def icon(self) -> str:
        return icon(f"os-{self.kind}", size=18)


# UA name (lower case) -> (icon kind, display name)
_OS_NAMES = {
    "ios": ("ios", "Apple iOS"),
    "ipados": ("ios", "Apple iPadOS"),
    "macos": ("macos", "Apple macOS"),
    "mac os": ("macos", "Apple macOS"),
    "mac os x": ("macos", "Apple macOS"),
    "windows": ("windows", "Microsoft Windows"),
    "android": ("android", "Google Android"),
    "ubuntu": ("ubuntu", "Ubuntu"),
    "debian": ("debian", "Debian"),
    "manjaro": ("manjaro", "Manjaro"),
    "linux": ("linux", "Linux"),
}
_UA_OS = re.compile(r"^\s*(?P<name>[^/]+)/(?P<version>\S*)")


def os_of(user_agent: str | None) -> OperatingSystem:
    """The OS of a client from the first "<name>/<version>" token of its user agent."""
    match = _UA_OS.match(user_agent or "")
    if match is None:
        return OperatingSystem("other", "Unknown", "")
    name, version = match["name"].strip(), match["version"]
    kind, label = _OS_NAMES.get(name.lower(), ("other", name))
    return OperatingSystem(kind, label, version)
