"""/metrics (firezone/metrics.py): access rules, the exported text, Celery outcomes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest
from celery.exceptions import AlwaysEagerIgnored
from django.test import Client, override_settings
from prometheus_client.metrics import MetricWrapperBase

from firezone import metrics
from firezone.devservices import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
REMOTE = "203.0.113.9"


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


def test_loopback_scrape_gets_the_text_format() -> None:
    metrics.SOCKETS.labels(kind="client").set(3)
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    body = response.content.decode()
    assert "# TYPE firezone_sockets gauge" in body
    assert 'firezone_sockets{kind="client"} 3.0' in body
    assert "process_resident_memory_bytes" in body
    assert "python_info" in body
    for name in (
        "firezone_socket_joins_total",
        "firezone_socket_rejections_total",
        "firezone_create_flow_seconds",
        "firezone_hub_change_apply_seconds",
        "firezone_hub_reloads_total",
        "firezone_hubs",
        "firezone_pushes_total",
        "firezone_celery_tasks_total",
    ):
        assert f"# HELP {name} " in body
    assert "_created" not in body


def test_ipv6_loopback_and_ipv4_mapped_loopback_are_allowed() -> None:
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::ffff:127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::ffff:203.0.113.9").get("/metrics").status_code == 404


@pytest.mark.django_db
def test_a_remote_address_gets_the_ordinary_404() -> None:
    refused = Client(REMOTE_ADDR=REMOTE).get("/metrics")
    unknown = Client(REMOTE_ADDR=REMOTE).get("/no-such-page/at-all")
    assert refused.status_code == unknown.status_code == 404
    assert b"firezone_" not in refused.content
    assert refused["Content-Type"] == unknown["Content-Type"]


@pytest.mark.django_db
def test_x_forwarded_for_is_not_trusted() -> None:
    client = Client(REMOTE_ADDR=REMOTE)
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 404
    assert client.get("/metrics", HTTP_X_REAL_IP="127.0.0.1").status_code == 404


@pytest.mark.django_db
def test_unparseable_or_missing_remote_address_is_refused() -> None:
    assert Client(REMOTE_ADDR="unix:/run/daphne.sock").get("/metrics").status_code == 404
    assert Client(REMOTE_ADDR="").get("/metrics").status_code == 404


@override_settings(METRICS_ALLOWED_NETWORKS=["203.0.113.0/24"])
def test_allowed_networks_setting() -> None:
    assert Client(REMOTE_ADDR=REMOTE).get("/metrics").status_code == 200


@pytest.mark.django_db
@override_settings(METRICS_ALLOWED_NETWORKS=["203.0.113.0/24"])
def test_allowed_networks_replace_the_loopback_default() -> None:
    assert Client().get("/metrics").status_code == 404


@pytest.mark.django_db
@override_settings(METRICS_ENABLED=False)
def test_disabled_is_404() -> None:
    assert Client().get("/metrics").status_code == 404


@pytest.mark.django_db
def test_only_get() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert client.put("/metrics").status_code == 405
    # A refused caller does not learn the endpoint exists from a 405.
    assert Client(REMOTE_ADDR=REMOTE).post("/metrics").status_code == 404


def test_push_counter_is_a_cached_child() -> None:
    child = metrics.push_counter("client", "resource_created_or_updated")
    assert metrics.push_counter("client", "resource_created_or_updated") is child
    labels = {"kind": "client", "event": "resource_created_or_updated"}
    before = _sample("firezone_pushes_total", labels)
    child.inc()
    child.inc(2)
    assert _sample("firezone_pushes_total", labels) == before + 3


def test_module_api_names_and_labels() -> None:
    def described(metric: MetricWrapperBase) -> tuple[str, tuple[str, ...]]:
        return metric._name, metric._labelnames

    assert described(metrics.SOCKETS) == ("firezone_sockets", ("kind",))
    assert described(metrics.JOINS) == ("firezone_socket_joins", ("kind",))
    assert described(metrics.REJECTIONS) == ("firezone_socket_rejections", ("kind", "status"))
    assert described(metrics.CREATE_FLOW_SECONDS) == ("firezone_create_flow_seconds", ())
    assert described(metrics.CHANGE_APPLY_SECONDS) == ("firezone_hub_change_apply_seconds", ())
    assert described(metrics.HUB_RELOADS) == ("firezone_hub_reloads", ("reason",))
    assert described(metrics.HUBS) == ("firezone_hubs", ())
    assert described(metrics.PUSHES) == ("firezone_pushes", ("kind", "event"))
    assert described(metrics.CELERY_TASKS) == ("firezone_celery_tasks", ("task", "outcome"))
    assert metrics.CREATE_FLOW_SECONDS._upper_bounds[0] == 0.001
    assert metrics.CREATE_FLOW_SECONDS._upper_bounds[-2] == 5.0
    assert metrics.CHANGE_APPLY_SECONDS._upper_bounds[-2] == 10.0


# --- Celery --------------------------------------------------------------------------------------
# `Task.apply()` runs the task through Celery's real tracer (celery.app.trace.build_tracer, the
# code a worker runs), which sends task_success / task_failure / task_retry; nothing is faked.

from firezone.celery import app  # noqa: E402


class _Boom(Exception):
    pass


@app.task(name="firezone.tests.metrics_ok")
def _ok() -> int:
    return 1


@app.task(name="firezone.tests.metrics_boom")
def _boom() -> None:
    raise _Boom("expected by the test")


@app.task(name="firezone.tests.metrics_flaky", bind=True, max_retries=1, default_retry_delay=0)
def _flaky(self) -> str:
    if self.request.retries == 0:
        raise self.retry(exc=_Boom("first attempt fails"))
    return "second attempt"


def _outcome(task: str, outcome: str) -> float:
    return _sample("firezone_celery_tasks_total", {"task": task, "outcome": outcome})


def test_celery_success_failure_and_retry_are_counted() -> None:
    ok, fail, retry = (
        _outcome("firezone.tests.metrics_ok", "success"),
        _outcome("firezone.tests.metrics_boom", "failure"),
        _outcome("firezone.tests.metrics_flaky", "retry"),
    )
    flaky_ok = _outcome("firezone.tests.metrics_flaky", "success")

    assert _ok.apply().get() == 1
    assert _boom.apply().failed()
    _flaky.apply()

    assert _outcome("firezone.tests.metrics_ok", "success") == ok + 1
    assert _outcome("firezone.tests.metrics_boom", "failure") == fail + 1
    assert _outcome("firezone.tests.metrics_flaky", "retry") == retry + 1
    assert _outcome("firezone.tests.metrics_flaky", "success") == flaky_ok + 1


def test_always_eager_delay_is_counted_too() -> None:
    before = _outcome("firezone.tests.metrics_ok", "success")
    _ok.delay()
    assert _outcome("firezone.tests.metrics_ok", "success") == before + 1


# --- a real worker serving its own metrics (CELERY_METRICS_PORT) ---------------------------------


def _scrape_until(url: str, needle: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                body = r.read().decode()
            if needle in body:
                return body
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"{needle!r} not seen at {url}:\n{body[-2000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_worker_serves_its_task_counters(settings, pool: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FIREZONE_TESTING"}
    env.update(
        DEBUG="true",
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_TASK_ALWAYS_EAGER="false",
        CELERY_METRICS_PORT=str(port),
        DJANGO_SETTINGS_MODULE="firezone.settings",
        PYTHONUNBUFFERED="1",
    )
    queue = f"metrics-test-{port}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "firezone", "worker", "--pool", pool,
         "--concurrency", "1", "-l", "warning", "-Q", queue],
        env=env, cwd=BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/metrics"  # prefork: child index 0 → port + 0
        _scrape_until(url, "process_resident_memory_bytes")
        with warnings.catch_warnings():  # the test settings are eager; send_task is not
            warnings.simplefilter("ignore", AlwaysEagerIgnored)
            app.send_task("firezone.tasks.heartbeat", queue=queue)
        body = _scrape_until(
            url,
            'firezone_celery_tasks_total{outcome="success",task="firezone.tasks.heartbeat"} 1.0',
        )
        assert "firezone_sockets" in body
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
