"""firezone/respawn.py, the wrapper `make run` puts around web, worker and beat: real child
processes that exit, hang or leave processes behind; short back-offs."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RESPAWN = Path(__file__).resolve().parent.parent / "firezone" / "respawn.py"


def _respawn(tmp_path: Path, child: str, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(RESPAWN), *options, "job", "--", sys.executable, "-c", child],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of someone else's is as good as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def _stop(proc: subprocess.Popen[str], timeout: float = 10.0) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


# Each start appends the time (CLOCK_MONOTONIC is system-wide), then the child exits 3.
CRASHER = "import time; open('starts', 'a').write(f'{time.monotonic()}\\n'); raise SystemExit(3)"


def _starts(tmp_path: Path) -> list[float]:
    path = tmp_path / "starts"
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def test_a_command_that_exits_is_restarted_with_a_doubling_back_off(tmp_path: Path) -> None:
    proc = _respawn(tmp_path, CRASHER, "--min-delay", "0.2", "--max-delay", "0.8")
    try:
        _wait_for(lambda: len(_starts(tmp_path)) >= 6)
    finally:
        rc, out = _stop(proc)
    assert rc == 0
    starts = _starts(tmp_path)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    for gap, delay in zip(gaps, (0.2, 0.4, 0.8, 0.8, 0.8), strict=False):
        # At least the back-off, plus a Python start-up (slow on a busy machine).
        assert delay <= gap < delay + 1.5, (gaps, out)
    assert "[respawn] job: exited (rc=3) after" in out
    announced = [line.rsplit(" ", 2)[-2] for line in out.splitlines() if "restarting in" in line]
    assert announced[:5] == ["0.2", "0.4", "0.8", "0.8", "0.8"]


def test_the_back_off_starts_over_after_a_long_enough_run(tmp_path: Path) -> None:
    child = "import time; time.sleep(0.5); raise SystemExit(1)"
    proc = _respawn(tmp_path, child, "--min-delay", "0.1", "--reset-after", "0.4")
    try:
        time.sleep(2.5)
    finally:
        _, out = _stop(proc)
    announced = [line for line in out.splitlines() if "restarting in" in line]
    assert len(announced) >= 3
    assert all(line.endswith("restarting in 0.1 s") for line in announced), out


def test_sigterm_stops_the_command_and_exits(tmp_path: Path) -> None:
    child = (
        "import os, time; open('pid', 'w').write(str(os.getpid())); print('up', flush=True);"
        " time.sleep(60)"
    )
    proc = _respawn(tmp_path, child)
    pid_file = tmp_path / "pid"
    _wait_for(pid_file.exists)
    _wait_for(lambda: pid_file.read_text().isdigit())
    pid = int(pid_file.read_text())
    started = time.monotonic()
    rc, out = _stop(proc)
    assert rc == 0
    assert time.monotonic() - started < 3
    assert not _alive(pid)
    assert "restarting" not in out


def test_a_command_that_ignores_sigterm_is_killed_after_the_stop_timeout(tmp_path: Path) -> None:
    child = (
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " open('pid', 'w').write(str(os.getpid())); time.sleep(60)"
    )
    proc = _respawn(tmp_path, child, "--stop-timeout", "0.5")
    pid_file = tmp_path / "pid"
    _wait_for(lambda: pid_file.exists() and pid_file.read_text().isdigit())
    rc, out = _stop(proc)
    assert rc == 0
    assert "did not stop within 0.5 s: killing it" in out
    assert not _alive(int(pid_file.read_text()))


def test_what_a_dead_command_left_behind_is_killed_before_the_restart(tmp_path: Path) -> None:
    # Like celery's pool processes when its main process is killed: a grandchild outlives it.
    child = (
        "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c',"
        " 'import time; time.sleep(60)']); open('orphan', 'a').write(f'{p.pid}\\n');"
        " raise SystemExit(1)"
    )
    proc = _respawn(tmp_path, child, "--min-delay", "0.2")
    orphans = tmp_path / "orphan"
    try:
        _wait_for(lambda: orphans.exists() and len(orphans.read_text().split()) >= 2)
        first = int(orphans.read_text().split()[0])
        _wait_for(lambda: not _alive(first), timeout=2)
    finally:
        _stop(proc)
    for pid in orphans.read_text().split():
        _wait_for(lambda pid=int(pid): not _alive(pid), timeout=2)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_back_off_ends_it_without_another_start(
    tmp_path: Path, signum: int
) -> None:
    proc = _respawn(tmp_path, CRASHER, "--min-delay", "5")
    _wait_for(lambda: len(_starts(tmp_path)) == 1)
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signum)
    proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert time.monotonic() - started < 2  # not the 5 s back-off
    assert len(_starts(tmp_path)) == 1
