"""The skeleton: health, seed, settings guards, ASGI routes, Celery schedule, a real server."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.test import Client, override_settings

from firezone.devservices import free_port

BASE_DIR = Path(__file__).resolve().parent.parent


def _subprocess_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FIREZONE_TESTING",)}
    env.update(overrides)
    return env


@pytest.mark.django_db
def test_healthz_ok_with_database_and_redis() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_names_redis_when_it_is_down() -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["redis: ConnectionError"]


def test_healthz_names_database_when_it_is_down() -> None:
    # A separate process whose DATABASE_URL points at a closed port: the real failure path.
    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/healthz'); print(r.status_code, r.content.decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_subprocess_env(
            DJANGO_SETTINGS_MODULE="firezone.settings",
            DEBUG="true",
            ALLOWED_HOSTS="testserver",
            DATABASE_URL=f"postgres://nobody@127.0.0.1:{free_port()}/none",
        ),
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        check=True,
    ).stdout
    status, body = out.strip().split(" ", 1)
    assert status == "503"
    assert json.loads(body)["down"] == ["database: OperationalError"]


def test_missing_secret_key_is_a_clear_startup_error() -> None:
    env = _subprocess_env(DEBUG="false", SECRET_KEY="")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**env, "DJANGO_SETTINGS_MODULE": "firezone.settings"},
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_production_mode_has_secure_cookies() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.DEBUG, s.ALLOWED_HOSTS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_subprocess_env(
            DJANGO_SETTINGS_MODULE="firezone.settings",
            DEBUG="false",
            SECRET_KEY="x" * 50,
            ALLOWED_HOSTS="portal.example.com",
        ),
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        check=True,
    ).stdout
    assert out.strip() == "True True False ['portal.example.com']"


@pytest.mark.django_db
def test_seed_json_is_valid_and_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    from django.contrib.auth import get_user_model

    call_command("seed", "--json")
    first = json.loads(capsys.readouterr().out)
    users = get_user_model().objects.count()
    call_command("seed", "--json")
    second = json.loads(capsys.readouterr().out)
    assert first == second
    assert get_user_model().objects.count() == users
    staff = get_user_model().objects.get(username=first["staff"]["username"])
    assert staff.is_staff and staff.check_password(first["staff"]["password"])


@pytest.mark.django_db
def test_seed_reset_starts_over(capsys: pytest.CaptureFixture[str]) -> None:
    from django.contrib.auth import get_user_model

    call_command("seed")
    staff = get_user_model().objects.get(username="staff")
    call_command("seed", "--reset")
    assert "Seed data ready." in capsys.readouterr().out
    assert get_user_model().objects.get(username="staff").pk != staff.pk


@pytest.mark.django_db
def test_admin_login_page_renders() -> None:
    response = Client().get("/admin/login/")
    assert response.status_code == 200
    assert b"Django administration" in response.content


@pytest.mark.parametrize("kind", ["client", "gateway", "relay"])
async def test_device_socket_paths_are_routed(kind: str) -> None:
    from firezone.asgi import application

    communicator = WebsocketCommunicator(application, f"/{kind}/websocket")
    # Routed to the device socket, which refuses an upgrade without a token (protocol.md §2.6).
    communicator.scope["extensions"] = {"websocket.http.response": {}}
    await communicator.send_input({"type": "websocket.connect"})
    start = await communicator.receive_output()
    body = await communicator.receive_output()
    assert (start["type"], start["status"]) == ("websocket.http.response.start", 401)
    assert body["body"] == b"Missing token"
    await communicator.wait()


async def test_unknown_socket_path_is_refused() -> None:
    from firezone.asgi import application

    communicator = WebsocketCommunicator(application, "/nope/websocket")
    with pytest.raises(ValueError, match="No route found"):
        await communicator.connect()


def test_beat_schedule_declares_the_heartbeat() -> None:
    from firezone.celery import app

    schedule = app.conf.beat_schedule
    assert schedule["heartbeat"]["task"] == "firezone.tasks.heartbeat"
    app.loader.import_default_modules()
    assert "firezone.tasks.heartbeat" in app.tasks


def _wait_http(url: str, timeout: float = 30) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_daphne_serves_health_and_admin(live_env: dict[str, str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "firezone.asgi:application"],
        env=live_env, cwd=BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        status, body = _wait_http(f"http://127.0.0.1:{port}/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, body = _wait_http(f"http://127.0.0.1:{port}/admin/login/")
        assert status == 200 and b"Django administration" in body
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_celery_worker_executes_the_heartbeat(live_env: dict[str, str]) -> None:
    # The heartbeat's lines are routine (DEBUG, settings._routine_task_logs): ask for them.
    env = {**live_env, "CELERY_TASK_ALWAYS_EAGER": "false", "LOG_LEVEL": "DEBUG"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "firezone", "worker", "--pool", "solo",
         "-l", "debug", "-Q", "celery"],
        env=env, cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        send = "from firezone.tasks import heartbeat; heartbeat.delay()"
        subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {send}"],
            env={**env, "DJANGO_SETTINGS_MODULE": "firezone.settings"},
            cwd=BASE_DIR,
            check=True,
        )
        # Lines are read on a thread so that a worker that never says it is done fails the test
        # after 60 s instead of blocking it on a read.
        lines: queue.Queue[str] = queue.Queue()
        assert worker.stdout is not None
        stdout = worker.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + 60
        seen: list[str] = []
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("no heartbeat succeeded within 60 s:\n" + "".join(seen))
            seen.append(line)
            if "firezone.tasks.heartbeat" in line and "succeeded" in line:
                break
    finally:
        worker.terminate()
        worker.wait(20)
