"""The metrics exporter against a database a live duroxide runtime is writing.

The runtime (a child process) runs orchestrations in waves; after each wave the
test scrapes the exporter (the installed `eventstore metrics serve`, read-only
on the same SQLite file) until it reports exactly the orchestrations completed
so far, then lets the next wave start. So the exporter is shown to report
orchestrations as they complete, with figures that match the runtime's.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytest.importorskip("duroxide")
from tests.interop_orchestrations import running, wait_until

pytestmark = pytest.mark.interop

WAVES = 3
PER_WAVE = 4  # every fourth orchestration fails
DEADLINE = 60.0


def _job_waves(db: str, signals: str) -> dict[str, str]:
    """Child process: run WAVES waves; after each, wait for the test's go-ahead."""
    outcomes: dict[str, str] = {}
    with running(db) as harness:
        Path(signals, "ready").touch()
        for wave in range(WAVES):
            started = []
            for n in range(PER_WAVE):
                instance_id = f"wave{wave}-{n}"
                name = "Failing" if n == 0 else "Child"
                harness.client.start_orchestration(instance_id, name, n)
                started.append(instance_id)
            for instance_id in started:
                outcomes[instance_id] = harness.wait(instance_id).status
            Path(signals, f"done{wave}").touch()
            wait_until(lambda w=wave: Path(signals, f"go{w}").exists(), f"go{wave}")  # type: ignore[misc]
    return outcomes


def _wait_for(path: Path, job: Any) -> None:
    deadline = time.monotonic() + DEADLINE
    while not path.exists():
        if job.ready():  # the runtime job ended early: raise its error here
            job.get()
            raise AssertionError(f"the runtime finished before {path.name}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def _scrape(url: str) -> dict[str, float]:
    """Completions by status, and the duration histogram's counts by status."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "duroxide_orchestration_completions_total":
                key = f"completions/{sample.labels['status']}"
            elif sample.name == "duroxide_orchestration_duration_seconds_count":
                key = f"durations/{sample.labels['status']}"
            else:
                continue
            figures[key] = figures.get(key, 0) + sample.value
    return figures


def test_exporter_reports_a_live_runtime_as_orchestrations_complete(tmp_path: Path) -> None:
    script = shutil.which("eventstore", path=os.path.dirname(sys.executable))
    assert script, "the eventstore console script is not installed"
    db = str(tmp_path / "live.db")
    signals = tmp_path / "signals"
    signals.mkdir()
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=1) as pool:
        job = pool.apply_async(_job_waves, (db, str(signals)))
        _wait_for(signals / "ready", job)  # duroxide created its database
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        exporter = subprocess.Popen(
            [script, "metrics", "serve", db, "--port", str(port), "--interval", "0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}/metrics"
        seen: list[dict[str, float]] = []
        try:
            for wave in range(WAVES):
                _wait_for(signals / f"done{wave}", job)
                expected = {
                    "completions/success": (wave + 1) * (PER_WAVE - 1),
                    "completions/failed": (wave + 1) * 1,
                    "durations/success": (wave + 1) * (PER_WAVE - 1),
                    "durations/failed": (wave + 1) * 1,
                }
                deadline = time.monotonic() + DEADLINE
                while True:
                    try:
                        figures = _scrape(url)
                    except OSError as exc:  # not listening yet, ...
                        if isinstance(exc, urllib.error.HTTPError):
                            exc.close()  # it holds the response's socket
                        figures = {}
                    if all(figures.get(k) == v for k, v in expected.items()):
                        break
                    assert exporter.poll() is None, (
                        exporter.stderr.read() if exporter.stderr else ""
                    )
                    assert time.monotonic() < deadline, f"wave {wave}: {figures} != {expected}"
                    time.sleep(0.1)
                seen.append(figures)
                (signals / f"go{wave}").touch()
            outcomes = job.get(DEADLINE)
        finally:
            exporter.send_signal(signal.SIGTERM)
            exporter.wait(timeout=30)
            if exporter.stderr is not None:
                exporter.stderr.close()
    assert exporter.returncode == 0
    assert sorted(set(outcomes.values())) == ["Completed", "Failed"]
    assert sum(1 for s in outcomes.values() if s == "Completed") == WAVES * (PER_WAVE - 1)
    # The exporter followed the runtime wave by wave, never ahead and never stuck.
    assert [s["completions/success"] for s in seen] == [3.0, 6.0, 9.0]
