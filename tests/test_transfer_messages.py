"""Expected failures of import and export reach the user as one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import eventstore
from tests.conftest import V0B_JSONL


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # The real console entry point: what a user sees, tracebacks included.
    return subprocess.run(
        [sys.executable, "-c", "from eventstore.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def _file_with(tmp_path: Path, bad_line: bytes, at: int = 4) -> Path:
    lines = V0B_JSONL.read_bytes().splitlines()
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join([*lines[: at - 1], bad_line, *lines[at - 1 :]]) + b"\n")
    return path


def test_import_of_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    good = V0B_JSONL.read_bytes().splitlines()[3]
    path = _file_with(tmp_path, good.replace(b'"event_type"', b'"event\xfftype"'))
    target = str(tmp_path / "s.db")
    _one_line_error(_cli("import", target, str(path)), "line 4", "not UTF-8", "0xff")
    with eventstore.open(target) as store:
        assert store.count() == 0


def test_import_of_a_line_nested_200000_deep_names_the_line(tmp_path: Path) -> None:
    path = _file_with(tmp_path, b"[" * 200_000 + b"]" * 200_000, at=2)
    target = str(tmp_path / "s.db")
    _one_line_error(_cli("import", target, str(path)), "line 2", "nested")
    with eventstore.open(target) as store:
        assert store.count() == 0
