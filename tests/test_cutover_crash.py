"""A cutover killed midway (SIGKILL, real process) and run again, on SQLite and PostgreSQL.

The window holds real histories (the runtime's rows of
tests/fixtures/duroxide-0.1.32, several copies) appended through a store whose
write generation is V0b. The killed cutover is tests/migrate_child.py in a
subprocess; the runs that finish go through the CLI.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import eventstore
from eventstore import Generation, decode, detect_version
from eventstore import events as ev
from eventstore.errors import WriteGenerationError
from tests.test_migrate_crash import ROOT, run_cli, snapshot

FIXTURE = Path(__file__).parent / "fixtures" / "duroxide-0.1.32" / "history.jsonl"
COPIES = 4
BATCH = 40
KILL_AFTER = 6
Key = tuple[str, int]


@pytest.fixture(params=["sqlite-file", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return str(tmp_path / "window.db")
    factory: Callable[[], str] = request.getfixturevalue("postgres_target_factory")
    return factory()


def window_histories() -> dict[Key, list[ev.Event]]:
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    grouped: dict[Key, list[ev.Event]] = {}
    for copy in range(COPIES):
        for n, row in enumerate(rows):
            key = (f"{row['instance_id']}-{copy}", row["execution_id"])
            event = decode(row["event_data"])
            grouped.setdefault(key, []).append(
                msgspec.structs.replace(
                    event,
                    instance_id=key[0],
                    runtime_version=f"rt {copy}.{n % 5}",
                )
            )
    return grouped


def run_killed(target: str, log: Path) -> subprocess.CompletedProcess[str]:
    child = ["-m", "tests.migrate_child", "cutover", target, str(BATCH), str(KILL_AFTER)]
    return subprocess.run(
        [sys.executable, *child, str(log)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_killed_cutover_resumes_and_rolls_back_exactly(target: str, tmp_path: Path) -> None:
    histories = window_histories()
    with eventstore.open(target, write_generation="V0b") as store:
        for (instance_id, execution_id), events in histories.items():
            assert store.append(instance_id, execution_id, events).written
        legacy = snapshot(store)
    total = len(legacy)
    assert total == sum(map(len, histories.values()))
    assert all(detect_version(r[4]) != Generation.V1 for r in legacy)

    killed = run_killed(target, tmp_path / "cutover.jsonl")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with eventstore.open(target, readonly=True) as store:
        (run,) = store.evolution.migration_runs()
        halfway = snapshot(store)
        counts = store.evolution.window_counts()
    assert (run.kind, run.status, run.strategy) == ("cutover", "running", "V0b")
    assert counts is not None and counts.generation == "V1"
    assert 0 < run.rows == total - counts.pending < total
    rewritten = [h for o, h in zip(legacy, halfway, strict=True) if o != h]
    assert len(rewritten) == run.rows  # whole batches, nothing torn
    assert all(detect_version(r[4]) == Generation.V1 for r in rewritten)
    # The generation is V1 from the cutover's first commit: a V0b writer is refused.
    with pytest.raises(WriteGenerationError):
        eventstore.open(target, write_generation="V0b")

    resumed = run_cli("cutover", target, "--batch-size", str(BATCH))
    assert resumed.returncode == 0, resumed.stderr
    assert "(resumed)" in resumed.stdout and f"run id: {run.run_id}" in resumed.stdout
    with eventstore.open(target) as store:
        assert store.write_generation == "V1"
        for (instance_id, execution_id), events in histories.items():
            read = store.read(instance_id, execution_id)
            assert read == [msgspec.structs.replace(e, execution_id=execution_id) for e in events]
        after = snapshot(store)
    assert [r[:4] for r in after] == [r[:4] for r in legacy]
    assert all(detect_version(r[4]) == Generation.V1 for r in after)

    back = run_cli("rollback", target, "--run", run.run_id, "--batch-size", "100")
    assert back.returncode == 0, back.stderr
    with eventstore.open(target) as store:
        assert snapshot(store) == legacy
        assert store.write_generation == "V0b"
        assert [r.status for r in store.evolution.migration_runs()] == ["rolled_back"]


def _started(instance_id: str) -> list[Any]:
    return [ev.OrchestrationStarted(event_id=1, name="O", version="1", input="null")]


def test_a_window_on_either_backend_refuses_other_writers(target: str) -> None:
    with eventstore.open(target, write_generation="V0b") as store:
        store.append("a", 1, _started("a"))
        assert not store.append("a", 1, _started("a")).written  # a retry
    with pytest.raises(WriteGenerationError, match="configured for V1"):
        eventstore.open(target, write_generation="V1")
    checked = run_cli("schema", "check", target, "--json")
    assert json.loads(checked.stdout)["window"] == {
        "generation": "V0b",
        "shadowed": 1,
        "pending": 1,
        "total": 1,
    }
    refused = run_cli("migrate", target)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "cutover" in refused.stderr
