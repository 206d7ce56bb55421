"""compose.yaml and the Dockerfile: every long-running service comes back when it exits and has
a health check; the web server runs with the same socket options as `make run`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from firezone.devservices import DAPHNE_SOCKET_OPTIONS
from tests.live import run_daphne, server_env

ROOT = Path(__file__).resolve().parent.parent
ONE_SHOT = {"migrate"}  # jobs the others wait for (service_completed_successfully)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]


def test_every_long_running_service_restarts_and_has_a_health_check(
    services: dict[str, Any],
) -> None:
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), name
        assert check.get("interval") and check.get("timeout") and check.get("retries"), name


def test_the_app_services_wait_for_healthy_stores_and_the_migration(
    services: dict[str, Any],
) -> None:
    for name in ("migrate", "web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
        if name != "migrate":
            assert depends["migrate"] == {"condition": "service_completed_successfully"}, name


def test_the_health_checks_probe_what_they_should(services: dict[str, Any]) -> None:
    def probe(name: str) -> str:
        return " ".join(services[name]["healthcheck"]["test"][1:])

    assert "pg_isready" in probe("postgres")
    assert "redis-cli ping" in probe("redis")
    assert "/healthz" in probe("web")
    assert "inspect ping -d celery@$$HOSTNAME" in probe("worker")
    assert "celerybeat-schedule" in probe("beat")
    # The file beat keeps (its `-s`) is the one the check looks at.
    assert "/tmp/celerybeat-schedule" in services["beat"]["command"]


def test_the_web_server_has_the_socket_options_of_make_run(services: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^CMD (\[.*?\])\s*$", dockerfile.replace("\\\n", ""), re.M | re.S)
    assert match is not None
    image_cmd = json.loads(match.group(1))
    for command in (services["web"]["command"], image_cmd):
        assert command[:3] == ["python", "-m", "firezone.webserver"]
        assert " ".join(command).find(DAPHNE_SOCKET_OPTIONS) != -1, command


@pytest.mark.slow
@pytest.mark.django_db
def test_the_web_health_check_passes_on_a_production_like_server(services: dict[str, Any]) -> None:
    """A portal host that is not 127.0.0.1 and https redirects on: the check still gets its 200
    (and fails once the server is gone)."""
    test = services["web"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    env = server_env(
        ALLOWED_HOSTS="portal.example.com",
        EXTERNAL_URL="https://portal.example.com",
        SECURE_SSL_REDIRECT="true",
    )
    with run_daphne(env) as server:
        command = [sys.executable, *[a.replace("8000", str(server.port)) for a in test[2:]]]
        check = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        status, _, _ = server.http("GET", "/healthz")
        assert status == 400  # a host ALLOWED_HOSTS does not know: why the check sends one
    gone = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert gone.returncode != 0
