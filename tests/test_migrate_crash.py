"""A migration killed midway (SIGKILL, real process) and run again: nothing lost or doubled.

The killed run is tests/migrate_child.py in a subprocess: the public
`migrate`/`rollback` with an `on_batch` callback that SIGKILLs the process
right after that many batches have committed, so the kill always lands
between two batches of a run that is far from finished. The runs that finish
go through the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore.codec import Generation
from eventstore.store import HistoryStore
from tests.conftest import V0A_JSONL, V0B_JSONL

ROOT = Path(__file__).resolve().parents[1]
COPIES = 12  # 12 x (132 + 132) legacy rows = 3168 rows
BATCH = 40  # about 80 batches
KILL_AFTER = 6


def dataset() -> list[dict[str, Any]]:
    rows = []
    for source in (V0A_JSONL, V0B_JSONL):
        tag = source.stem.split("-")[0]
        base = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
        for copy in range(COPIES):
            for row in base:
                rows.append({**row, "instance_id": f"{row['instance_id']}-{tag}-{copy}"})
    return rows


def snapshot(store: HistoryStore) -> list[tuple[Any, ...]]:
    return sorted(
        (r["instance_id"], r["execution_id"], r["event_id"], r["event_type"], r["event_data"])
        for r in store.export_rows()
    )


def script() -> str:
    found = shutil.which("eventstore", path=os.path.dirname(sys.executable))
    assert found, "the eventstore console script is not installed in this environment"
    return found


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script(), *args], capture_output=True, text=True, check=False, timeout=300
    )


def run_killed(command: str, target: str, extra: str) -> subprocess.CompletedProcess[str]:
    """`command` (migrate or rollback) SIGKILLed after KILL_AFTER committed batches."""
    child = ["-m", "tests.migrate_child", command, target, str(BATCH), str(KILL_AFTER), extra]
    return subprocess.run(
        [sys.executable, *child],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(params=["sqlite-file", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return str(tmp_path / "crash.db")
    factory: Callable[[], str] = request.getfixturevalue("postgres_target_factory")
    return factory()


def test_killed_migration_resumes_without_loss_or_duplicates(target: str, tmp_path: Path) -> None:
    with eventstore.open(target) as store:
        store.import_rows(dataset())
        original = snapshot(store)
    total = len(original)
    system_calls = sum(1 for row in original if row[3] == "SystemCall")

    log = tmp_path / "run.jsonl"
    killed = run_killed("migrate", target, str(log))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with eventstore.open(target, readonly=True) as store:
        (run,) = store.backend.migration_runs()
        assert run.status == "running"
        halfway = snapshot(store)
        archived = store.backend.archived_rows(run.run_id, ("", -1, -1), 1_000_000)
    assert len(halfway) == total
    assert 0 < run.rows == len(archived) < total - system_calls
    changed = [a for a, b in zip(original, halfway, strict=True) if a != b]
    assert len(changed) == run.rows  # exactly the committed batches' rows, nothing torn

    # Run again: the same run resumes from its cursor and completes.
    resumed = run_cli("migrate", target, "--batch-size", str(BATCH), "--log", str(log))
    assert resumed.returncode == 0, resumed.stderr
    assert "(resumed)" in resumed.stdout and f"run id: {run.run_id}" in resumed.stdout
    with eventstore.open(target) as store:
        runs = store.backend.migration_runs()
        assert [(r.run_id, r.status) for r in runs] == [(run.run_id, "completed")]
        after = snapshot(store)
        assert len(after) == total
        assert [r[:3] for r in after] == [r[:3] for r in original]  # same keys, once each
        generations = {}
        for page in store.scan():
            for row in page:
                found = store.codec.decode_detailed(
                    row.event_data, instance_id=row.instance_id, execution_id=row.execution_id
                )
                name = "V1" if found.generation == Generation.V1 else row.event_type
                generations[name] = generations.get(name, 0) + 1
        assert generations == {"V1": total - system_calls, "SystemCall": system_calls}
        archived = store.backend.archived_rows(runs[0].run_id, ("", -1, -1), 1_000_000)
        assert runs[0].rows == len(archived) == total - system_calls
        # every archived row is the original, exactly once
        originals = {row[:3]: row for row in original}
        assert all(
            originals[(a.instance_id, a.execution_id, a.event_id)][3:] == a[3:] for a in archived
        )
    # The log of both processes together names every rewritten row once.
    records = [json.loads(line) for line in log.read_text().splitlines()]
    logged = [
        (r["instance_id"], r["execution_id"], c["event_id"])
        for r in records
        if "changes" in r
        for c in r["changes"]
    ]
    assert len(logged) == len(set(logged)) == total - system_calls

    back = run_cli("rollback", target, "--run", run.run_id, "--batch-size", "100")
    assert back.returncode == 0, back.stderr
    with eventstore.open(target, readonly=True) as store:
        assert snapshot(store) == original


def test_killed_rollback_runs_again_to_the_exact_original(target: str) -> None:
    with eventstore.open(target) as store:
        store.import_rows(dataset())
        original = snapshot(store)
    done = run_cli("migrate", target, "--batch-size", str(BATCH))
    assert done.returncode == 0, done.stderr
    with eventstore.open(target, readonly=True) as store:
        (run,) = store.backend.migration_runs()
        migrated = snapshot(store)
    assert migrated != original

    killed = run_killed("rollback", target, run.run_id)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with eventstore.open(target, readonly=True) as store:
        (halfway_run,) = store.backend.migration_runs()
        halfway = snapshot(store)
    assert halfway_run.status == "rolling_back"
    # Every row is whole: either still migrated or already its original bytes,
    # and the kill landed midway: some rewritten rows are back, not all.
    rows = list(zip(original, migrated, halfway, strict=True))
    assert all(h in (o, m) for o, m, h in rows)
    rewritten = [(o, h) for o, m, h in rows if o != m]
    back = sum(1 for o, h in rewritten if h == o)
    assert 0 < back < len(rewritten)

    again = run_cli("rollback", target, "--run", run.run_id, "--batch-size", str(BATCH))
    assert again.returncode == 0, again.stderr
    with eventstore.open(target, readonly=True) as store:
        assert snapshot(store) == original
        assert [r.status for r in store.backend.migration_runs()] == ["rolled_back"]


def test_appends_from_another_process_during_a_migration_survive(target: str) -> None:
    from eventstore import events as ev

    with eventstore.open(target) as store:
        store.import_rows(dataset())
        legacy = store.count()
    child = subprocess.Popen(
        [script(), "migrate", target, "--batch-size", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    appended = 0
    with eventstore.open(target) as store:
        n = 0
        while child.poll() is None or n < 3:
            instance = f"live-{n}"
            store.append(
                instance,
                1,
                [
                    ev.OrchestrationStarted(event_id=1, name="L", version="1.0.0", input="null"),
                    ev.ActivityScheduled(event_id=2, name="A", input=str(n)),
                ],
                expected_last_event_id=0,
            )
            appended += 2
            n += 1
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        assert store.count() == legacy + appended
        for i in range(n):
            events = store.read(f"live-{i}", 1)
            assert [e.event_type for e in events] == ["OrchestrationStarted", "ActivityScheduled"]
            assert events[1].input == str(i)  # type: ignore[union-attr]
        (run,) = store.backend.migration_runs()
        assert run.status == "completed" and f"run id: {run.run_id}" in out
