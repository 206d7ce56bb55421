"""The latest published versions of Firezone's components (domain.md §5.14,
billing_sync_jobs.md §3.2 row 14, §5.6).

The refresher (`component_versions_refresh`, Celery beat every minute) reads the releases JSON,
`{"apple": "1.5.8", "android": …, "gateway": …, "gui": …, "headless": …}`, from
`settings.COMPONENT_VERSIONS_URL`:

* an `http(s)://` URL is fetched (production default: Firezone's `/api/releases`);
* a `file://` URL is read from disk;
* empty (the development and test default) reads the bundled `firezone/releases.json`.

Each valid version is stored in the `ComponentVersion` table (one row per component), so the last
known versions survive a failed fetch, a restart and a Redis flush, and every process reads the
same ones. A failed refresh (transport error, timeout, non-200, a body that is not a JSON object
with at least one semantic version) changes nothing and logs a warning. Until a first refresh
succeeds the readers get the fallbacks: the original's configured versions, the gateway's from
`settings.GATEWAY_LATEST_VERSION`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from firezone.models import ComponentVersion
from firezone.versions import version_key

logger = logging.getLogger(__name__)

COMPONENTS = ("apple", "android", "gateway", "gui", "headless")
# The original's configured versions (domain.md §5.14), used until a refresh succeeds.
FALLBACK_VERSIONS = {"apple": "1.3.8", "android": "1.3.6", "gui": "1.3.11", "headless": "1.3.5"}
BUNDLED_RELEASES = Path(__file__).resolve().parent / "releases.json"


class ReleasesUnavailable(Exception):
    """The releases source could not be read or did not hold any version."""


@dataclass(frozen=True)
class RefreshResult:
    ok: bool
    # The versions read (on success) — stored; empty on failure.
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "versions": self.versions, "error": self.error}


# --- reads -------------------------------------------------------------------------------------


def fallback_versions() -> dict[str, str]:
    return {**FALLBACK_VERSIONS, "gateway": settings.GATEWAY_LATEST_VERSION}


def latest_versions() -> dict[str, str]:
    """Every component's latest version: the stored ones over the fallbacks."""
    versions = fallback_versions()
    versions.update(dict(ComponentVersion.objects.values_list("component", "version")))
    return versions


def latest_version(component: str) -> str:
    stored = (
        ComponentVersion.objects.filter(component=component)
        .values_list("version", flat=True)
        .first()
    )
    return stored or fallback_versions()[component]


# --- the refresher -----------------------------------------------------------------------------


def _read_source(url: str) -> Any:
    """The decoded JSON of the releases source; ReleasesUnavailable with the reason."""
    if not url or url.startswith("file://"):
        path = Path(unquote(urlsplit(url).path)) if url else BUNDLED_RELEASES
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ReleasesUnavailable(f"{path}: {exc}") from exc
    try:
        response = requests.get(
            url,
            timeout=settings.COMPONENT_VERSIONS_TIMEOUT,
            headers={"Accept": "application/json"},
        )
    except requests.RequestException as exc:
        raise ReleasesUnavailable(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise ReleasesUnavailable(f"HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise ReleasesUnavailable("the body is not JSON") from exc


def parse_releases(data: Any) -> dict[str, str]:
    """The valid component versions of a releases document; unknown keys are ignored, a value
    that is not a semantic version is skipped (and logged)."""
    if not isinstance(data, dict):
        raise ReleasesUnavailable("the body is not a JSON object")
    versions: dict[str, str] = {}
    for component in COMPONENTS:
        value = data.get(component)
        if isinstance(value, str) and version_key(value) is not None:
            versions[component] = value
        elif value is not None:
            logger.warning("component versions: ignored %s version %r", component, value)
    if not versions:
        raise ReleasesUnavailable("no component version in the releases")
    return versions


@transaction.atomic
def component_versions_store(*, versions: dict[str, str]) -> None:
    """Upsert the versions (one row per component)."""
    now = timezone.now()
    previous = dict(ComponentVersion.objects.values_list("component", "version"))
    ComponentVersion.objects.bulk_create(
        [ComponentVersion(component=c, version=v, fetched_at=now) for c, v in versions.items()],
        update_conflicts=True,
        unique_fields=["component"],
        update_fields=["version", "fetched_at"],
    )
    for component, version in versions.items():
        if previous.get(component) != version:
            logger.info(
                "component versions: %s %s -> %s", component, previous.get(component), version
            )


def component_versions_refresh() -> RefreshResult:
    """Read the releases source and store its versions; on any failure keep the stored ones."""
    url = settings.COMPONENT_VERSIONS_URL
    try:
        versions = parse_releases(_read_source(url))
    except ReleasesUnavailable as exc:
        logger.warning(
            "component versions: could not refresh from %s (%s); keeping the last known",
            url or BUNDLED_RELEASES,
            exc,
        )
        return RefreshResult(ok=False, error=str(exc))
    component_versions_store(versions=versions)
    return RefreshResult(ok=True, versions=versions)
