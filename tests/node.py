"""Node.js for the tests that drive real JavaScript tools (phoenix.js, oidc-provider)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def node_with_packages(package_dir: Path, package: str) -> str:
    """The `node` binary, after `npm ci` in `package_dir` if `package` is not installed there.

    Skips the test when node/npm are missing (`.ci/run` installs them)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed (apt-get install nodejs npm; .ci/run does)")
    if not (package_dir / "node_modules" / package / "package.json").exists():
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=package_dir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return node
