"""scripts/setup.sh: clear messages for missing build tools, and no work on a second run."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
SETUP = ROOT / "scripts" / "setup.sh"
BASH = shutil.which("bash") or "/bin/bash"


def path_with_only(tmp_path: Path, tools: list[str]) -> str:
    for tool in tools:
        (tmp_path / tool).symlink_to(shutil.which(tool))
    return str(tmp_path)


def run_check(path: str) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(SETUP), "--check-build-tools"], capture_output=True,
                          text=True, env={**os.environ, "PATH": path}, timeout=30)


def test_missing_cmake_is_named(tmp_path: Path) -> None:
    result = run_check(path_with_only(tmp_path, ["sha256sum", "cut", "cat", "dirname", "cc"]))
    assert result.returncode == 1
    assert "cmake not found: install it (apt-get install cmake)" in result.stderr


def test_missing_compiler_is_named(tmp_path: Path) -> None:
    result = run_check(path_with_only(tmp_path, ["sha256sum", "cut", "cat", "dirname", "cmake"]))
    assert result.returncode == 1
    assert "no C compiler found" in result.stderr


def test_second_run_rebuilds_nothing() -> None:
    """The suite runs after set-up, so this run must only check stamps."""
    start = time.monotonic()
    result = subprocess.run([BASH, str(SETUP)], capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert "generating" not in result.stdout and "installing" not in result.stdout
    assert elapsed < 10.0
