"""The component-versions refresher (domain.md §5.14, billing_sync_jobs.md §3.2 row 14, §5.6):
Firezone's releases endpoint is a real local HTTP server (pytest-httpserver) answering the spec's
`firezone_releases.json`; the versions land in the database and a failed refresh keeps them."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from firezone import tasks
from firezone.celery import app
from firezone.component_versions import (
    BUNDLED_RELEASES,
    component_versions_refresh,
    latest_version,
    latest_versions,
)
from firezone.models import ComponentVersion
from tests.locks import held_elsewhere

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parents[2] / "tests/fixtures/external/firezone_releases.json"
RELEASES = json.loads(FIXTURE.read_text())


@pytest.fixture
def releases(httpserver: HTTPServer, settings: Any) -> HTTPServer:
    """Firezone's `/api/releases` on a local port, the refresher pointed at it."""
    settings.COMPONENT_VERSIONS_URL = httpserver.url_for("/api/releases")
    settings.COMPONENT_VERSIONS_TIMEOUT = 1.0
    return httpserver


def _answer(server: HTTPServer, body: Any, status: int = 200, **kwargs: Any) -> None:
    server.clear()
    if isinstance(body, str):
        server.expect_request("/api/releases").respond_with_data(body, status, **kwargs)
    else:
        server.expect_request("/api/releases").respond_with_json(body, status)


def _stored() -> dict[str, str]:
    return dict(ComponentVersion.objects.values_list("component", "version"))


def test_fallbacks_until_a_first_refresh(settings: Any) -> None:
    settings.GATEWAY_LATEST_VERSION = "1.4.0"
    assert latest_version("gateway") == "1.4.0"
    assert latest_versions() == {
        "apple": "1.3.8",
        "android": "1.3.6",
        "gateway": "1.4.0",
        "gui": "1.3.11",
        "headless": "1.3.5",
    }


def test_refresh_stores_the_releases(releases: HTTPServer) -> None:
    _answer(releases, RELEASES)
    result = component_versions_refresh()
    assert result.ok and result.versions == RELEASES
    assert _stored() == RELEASES
    assert latest_version("gateway") == "1.4.17"
    assert latest_versions() == RELEASES
    (request, _response), *_ = releases.log
    assert request.method == "GET" and request.headers["Accept"] == "application/json"

    # A new release replaces the stored version.
    _answer(releases, {**RELEASES, "gateway": "1.4.18"})
    assert component_versions_refresh().ok
    assert latest_version("gateway") == "1.4.18"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (("oops", 500), "HTTP 500"),
        (("not json {", 200, {"content_type": "application/json"}), "the body is not JSON"),
        ((["1.4.17"], 200), "the body is not a JSON object"),
        (({"gateway": "latest", "apple": 7}, 200), "no component version in the releases"),
        (("", 302, {"headers": {"Location": "http://127.0.0.1:9/"}}), "ConnectionError"),
    ],
)
def test_a_failed_refresh_keeps_the_last_known_versions(
    releases: HTTPServer, caplog: pytest.LogCaptureFixture, answer: tuple, reason: str
) -> None:
    _answer(releases, RELEASES)
    assert component_versions_refresh().ok
    body, status, *kwargs = answer
    _answer(releases, body, status, **(kwargs[0] if kwargs else {}))
    with caplog.at_level(logging.WARNING, logger="firezone.component_versions"):
        result = component_versions_refresh()
    assert not result.ok and reason in (result.error or "")
    assert _stored() == RELEASES
    assert latest_version("gateway") == "1.4.17"
    assert "keeping the last known" in caplog.text and reason in caplog.text


def test_a_timeout_keeps_the_last_known_versions(
    releases: HTTPServer, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _answer(releases, RELEASES)
    assert component_versions_refresh().ok

    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return Response(json.dumps({**RELEASES, "gateway": "9.9.9"}), 200)

    releases.clear()
    releases.expect_request("/api/releases").respond_with_handler(slow)
    settings.COMPONENT_VERSIONS_TIMEOUT = 0.2
    with caplog.at_level(logging.WARNING, logger="firezone.component_versions"):
        result = component_versions_refresh()
    assert not result.ok and "Timeout" in (result.error or "")
    assert latest_version("gateway") == "1.4.17"
    assert "keeping the last known" in caplog.text


def test_an_invalid_version_is_skipped_the_others_stored(
    releases: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    _answer(releases, {**RELEASES, "apple": "next", "future-component": "2.0.0"})
    with caplog.at_level(logging.WARNING, logger="firezone.component_versions"):
        result = component_versions_refresh()
    assert result.ok
    assert _stored() == {k: v for k, v in RELEASES.items() if k != "apple"}
    assert latest_version("apple") == "1.3.8"  # still the fallback
    assert "ignored apple version 'next'" in caplog.text


def test_development_reads_the_bundled_file(settings: Any) -> None:
    settings.COMPONENT_VERSIONS_URL = ""
    assert component_versions_refresh().ok
    assert _stored() == json.loads(BUNDLED_RELEASES.read_text())


def test_a_file_url_is_read_from_disk(settings: Any, tmp_path: Path) -> None:
    path = tmp_path / "my releases.json"
    path.write_text(json.dumps({**RELEASES, "gateway": "1.5.0"}))
    settings.COMPONENT_VERSIONS_URL = path.as_uri()
    assert component_versions_refresh().ok
    assert latest_version("gateway") == "1.5.0"

    settings.COMPONENT_VERSIONS_URL = (tmp_path / "missing.json").as_uri()
    result = component_versions_refresh()
    assert not result.ok and "missing.json" in (result.error or "")
    assert latest_version("gateway") == "1.5.0"


def test_the_task_runs_once_at_a_time(releases: HTTPServer) -> None:
    _answer(releases, RELEASES)
    assert (
        held_elsewhere("firezone.component_versions_refresh", tasks.component_versions_refresh)
        is None
    )
    assert _stored() == {} and releases.log == []
    assert tasks.component_versions_refresh() == {"ok": True, "versions": RELEASES, "error": None}


def test_the_refresher_is_on_the_beat_schedule() -> None:
    schedule = {e["task"]: e for e in app.conf.beat_schedule.values()}
    assert schedule["firezone.tasks.component_versions_refresh"]["schedule"] == 60.0
    assert schedule["gateways.tasks.outdated_gateways_notify"]["schedule"] == 300.0
    app.loader.import_default_modules()
    assert "firezone.tasks.component_versions_refresh" in app.tasks
    assert "gateways.tasks.outdated_gateways_notify" in app.tasks
