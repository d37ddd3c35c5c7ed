"""How the command line behaves as a process: `python -m`, pipes, wrapping, help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import eventstore


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventstore", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_python_dash_m_runs_the_command_line(tmp_path: Path) -> None:
    version = run_module("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"eventstore, version {eventstore.__version__}"
    db = tmp_path / "m.db"
    init = run_module("init", str(db))
    assert init.returncode == 0, init.stderr
    assert "ready:" in init.stdout and db.exists()
    usage = run_module("no-such-command")
    assert usage.returncode == 2
    assert "Usage: eventstore" in usage.stderr  # named like the script, not __main__.py
