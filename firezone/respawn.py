"""Keep one command running: `make run` wraps each of its processes (web, worker, beat) in this,
so a crashed one is started again instead of honcho stopping all the others.

    python firezone/respawn.py [--min-delay 1] [--max-delay 30] [--reset-after 60] NAME -- CMD...

The command is started again whenever it exits, after a back-off that doubles from `--min-delay`
up to `--max-delay` and starts over once a run lasted `--reset-after` seconds. Each restart is
announced on stderr. The command runs in a process group of its own: whatever it leaves behind
when it dies (celery's pool processes after a SIGKILL) is killed with it. SIGTERM or SIGINT stop
this: the command gets SIGTERM, its group SIGKILL after `--stop-timeout` seconds (4: honcho
kills us after 5), and this exits 0. Run by path, not `-m firezone.respawn`: standard library
only, it starts even when the project's code does not import.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType


class Respawner:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        min_delay: float = 1.0,
        max_delay: float = 30.0,
        reset_after: float = 60.0,
        stop_timeout: float = 4.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.reset_after = reset_after
        self.stop_timeout = stop_timeout
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None

    def say(self, text: str) -> None:
        print(f"[respawn] {self.name}: {text}", file=sys.stderr, flush=True)

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self.stopping.set()
        if self.child is not None and self.child.returncode is None:
            # The command alone: celery's worker stops its pool itself, after the running tasks
            # (a SIGTERM to the group kills them mid-task: WorkerLostError tracebacks).
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        delay = self.min_delay
        while not self.stopping.is_set():
            started = time.monotonic()
            self.child = subprocess.Popen(self.argv, process_group=0)  # noqa: S603
            if self.stopping.is_set():  # a signal came while it was starting
                self.stop()
            rc = self._wait(self.child)
            _signal_group(self.child.pid, signal.SIGKILL)  # its leftovers
            if self.stopping.is_set():
                break
            uptime = time.monotonic() - started
            if uptime >= self.reset_after:
                delay = self.min_delay
            self.say(f"exited (rc={rc}) after {uptime:.1f} s; restarting in {delay:g} s")
            if self.stopping.wait(delay):
                break
            delay = min(delay * 2, self.max_delay)
        return 0

    def _wait(self, child: subprocess.Popen[bytes]) -> int:
        while True:
            try:
                rc = child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                if self.stopping.is_set():
                    break
                continue
            return rc
        try:
            return child.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.say(f"did not stop within {self.stop_timeout:g} s: killing it")
            _signal_group(child.pid, signal.SIGKILL)
            return child.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pgid, signum)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="firezone/respawn.py", description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--min-delay", type=float, default=1.0)
    parser.add_argument("--max-delay", type=float, default=30.0)
    parser.add_argument("--reset-after", type=float, default=60.0)
    parser.add_argument("--stop-timeout", type=float, default=4.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    respawner = Respawner(
        args.name,
        command,
        min_delay=args.min_delay,
        max_delay=args.max_delay,
        reset_after=args.reset_after,
        stop_timeout=args.stop_timeout,
    )
    signal.signal(signal.SIGTERM, respawner.stop)
    signal.signal(signal.SIGINT, respawner.stop)
    return respawner.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
