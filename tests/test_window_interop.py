"""Phase-2 metadata and the dual-write window, against the real duroxide runtime.

1. duroxide 0.2.2 reads (and resumes from) history rows that carry every
   phase-2 field, and fields no version of the model knows: it ignores them.
2. The rolling upgrade end to end, on a copy of a database the runtime wrote
   (tests/fixtures/duroxide-0.1.32): its rows turned into V0b (the rows
   "before the window"), a dual-write window opened, every execution appended
   again through eventstore with its original timestamps and metadata. A V0b
   reader reads every row (eventstore's legacy decoder, and the shape of the
   shared `to_legacy` tool, copied to tests/fixtures/to_legacy.py). Then a
   cutover, SIGKILLed in a real subprocess after a few batches, resumed; duroxide
   reads every window history with the original timestamps; a rollback
   restores the rows byte for byte and the V0b write generation.

The runtime runs in a child process (see tests/interop_orchestrations.py).
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

import eventstore
from eventstore import Generation, decode, detect_version, encode
from eventstore import events as ev
from eventstore.store.verify import verify
from tests import interop_orchestrations as orch
from tests.interop_orchestrations import Key, in_runtime_process
from tests.test_interop import (
    copy_database,
    expected_view,
    history_rows,
    read_with_duroxide,
    rewrite_rows,
    to_v0,
    waiting_database,  # noqa: F401  (a fixture)
)
from tests.test_migrate_crash import ROOT, run_cli

pytestmark = pytest.mark.interop

FIXTURES = Path(__file__).parent / "fixtures"
RUNTIME_DB = FIXTURES / "duroxide-0.1.32" / "runtime.db"
WINDOW = "w-"
"""Instance-id prefix of the histories appended during the window."""
PHASE2_NAMES = frozenset(field for _type, field in ev.PHASE2_FIELDS)
BATCH = 20


def _to_legacy_tool() -> Any:
    spec = importlib.util.spec_from_file_location("to_legacy", FIXTURES / "to_legacy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TO_LEGACY = _to_legacy_tool()


def with_metadata(event: ev.Event, n: int) -> ev.Event:
    """The event with every phase-2 field its type has, set."""
    fields: dict[str, Any] = {"runtime_version": f"myruntime 2.{n % 3}.0"}
    if isinstance(event, ev.OrchestrationStarted):
        fields |= {
            "worker_id": f"worker-{n % 4}",
            "trace_id": f"{n:032x}",
            "correlation_id": f"order-{n}",
            "tags": {"team": "payments", "region": "eu-1"},
        }
    elif isinstance(event, ev.ActivityScheduled):
        fields |= {
            "retry_count": n % 3,
            "timeout_ms": 30_000,
            "retry_policy": ev.RetryPolicy(max_attempts=5, initial_backoff_ms=100),
            "scheduled_by_worker_id": f"worker-{n % 4}",
        }
    elif isinstance(event, ev.SubOrchestrationScheduled | ev.TimerCreated):
        fields["scheduled_by_worker_id"] = f"worker-{n % 4}"
    elif isinstance(event, ev.ActivityCompleted | ev.ActivityFailed):
        fields["completed_by_worker_id"] = f"worker-{(n + 1) % 4}"
    return msgspec.structs.replace(event, **fields)


def _metadata_row(data: str, instance_id: str, execution_id: int) -> str:
    event = decode(data, instance_id=instance_id, execution_id=execution_id)
    return encode(with_metadata(event, event.event_id)).decode()


def _future_row(data: str, instance_id: str, execution_id: int) -> str:
    """The row with fields that no version of the model knows."""
    obj = json.loads(_metadata_row(data, instance_id, execution_id))
    obj["x_future_flag"] = True
    obj["x_future_detail"] = {"nested": [1, "two", None]}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _instances(path: Path) -> list[str]:
    return sorted({r[0] for r in history_rows(path)})


# --------------------------------------------------------------------------
# 1. duroxide reads what phase 2 adds
# --------------------------------------------------------------------------


@pytest.mark.parametrize("rewrite", [_metadata_row, _future_row], ids=["phase2", "unknown"])
def test_runtime_reads_rows_carrying_metadata(tmp_path: Path, rewrite: Any) -> None:
    """Every row of a runtime database rewritten with the phase-2 fields (and,
    second case, with fields nobody knows): duroxide reads every execution as
    before, event for event, timestamps included; eventstore decodes them and
    keeps the phase-2 fields, and drops the unknown ones on decode (the row
    itself is never rewritten)."""
    baseline_path = tmp_path / "baseline.db"
    copy_database(RUNTIME_DB, baseline_path)
    baseline = read_with_duroxide(baseline_path)
    assert baseline.views and not baseline.errors
    path = tmp_path / "metadata.db"
    copy_database(RUNTIME_DB, path)
    rows = history_rows(path)
    changed = sum(rewrite_rows(path, i, rewrite) for i in _instances(path))
    assert changed == len(rows)
    reading = read_with_duroxide(path)
    assert not reading.errors
    assert reading.views == baseline.views
    with eventstore.open(str(path), readonly=True) as store:
        assert verify(store).ok
        started = [e for e in store.read_all() if isinstance(e.event, ev.OrchestrationStarted)]
    assert started and all(s.event.worker_id.startswith("worker-") for s in started)  # type: ignore[union-attr]
    if rewrite is _future_row:
        stored = history_rows(path)
        assert all('"x_future_flag":true' in r[4] for r in stored)


def test_runtime_resumes_history_carrying_metadata(waiting_database: Path, tmp_path: Path) -> None:  # noqa: F811
    """A waiting orchestration whose stored turns carry phase-2 metadata and
    unknown fields: duroxide replays them and completes it."""
    path = tmp_path / "runtime.db"
    copy_database(waiting_database, path)
    before = [r for r in history_rows(path) if r[0] == "resume-1"]
    assert rewrite_rows(path, "resume-1", _future_row) == len(before)
    resumed = in_runtime_process(orch.job_raise_and_wait, str(path), "resume-1")
    assert resumed.read_error is None
    assert resumed.status == "Completed"
    assert resumed.output == {"first": "r", "recovered": True, "second": "go"}
    after = [r for r in history_rows(path) if r[0] == "resume-1"]
    # The runtime appended its new turns and left the rewritten ones alone.
    assert [r[4] for r in after[: len(before)]] == [_future_row(r[4], r[0], r[1]) for r in before]


# --------------------------------------------------------------------------
# 2. The rolling upgrade: V0b store, window, cutover (killed), rollback
# --------------------------------------------------------------------------


def _v0b_before_the_window(path: Path) -> None:
    """The runtime's rows as a V0b writer stored them (kinds V0 lacked stay V1)."""
    for instance_id in _instances(path):
        rewrite_rows(path, instance_id, lambda data, _i, _x: to_v0(data, "V0b"))


def _window_events(source: list[Any]) -> dict[Key, list[ev.Event]]:
    grouped: dict[Key, list[ev.Event]] = {}
    for n, (instance_id, execution_id, _eid, _type, data, _created) in enumerate(source):
        event = decode(data, instance_id=instance_id, execution_id=execution_id)
        key = (WINDOW + instance_id, execution_id)
        grouped.setdefault(key, []).append(
            with_metadata(
                msgspec.structs.replace(event, instance_id=key[0], execution_id=execution_id), n
            )
        )
    return grouped


def _shadow(path: Path) -> dict[tuple[str, int, int], str]:
    con = sqlite3.connect(path)
    try:
        return {
            (i, x, e): d
            for i, x, e, d in con.execute(
                "SELECT instance_id, execution_id, event_id, event_data FROM eventstore_shadow"
            )
        }
    finally:
        con.close()


def _assert_v0b_readers_read(path: Path, appended: dict[Key, list[ev.Event]]) -> None:
    rows = [r for r in history_rows(path) if r[0].startswith(WINDOW)]
    assert len(rows) == sum(map(len, appended.values()))
    shadow = _shadow(path)
    compared = 0
    for instance_id, execution_id, event_id, _type, data, _created in rows:
        assert detect_version(data) in (Generation.V0, Generation.V0B)
        v1 = json.loads(shadow[(instance_id, execution_id, event_id)])
        assert v1["timestamp_ms"] > 0
        # The tool passes fields it does not know through; the window's legacy
        # rows leave the phase-2 metadata to the shadow form.
        core = {k: v for k, v in v1.items() if k not in PHASE2_NAMES}
        tool = TO_LEGACY.to_v0(core, "v0b", {})
        if tool is not None:  # the tool's shape, byte for byte
            t, body = tool
            assert data == json.dumps({t: body}, separators=(",", ":"), ensure_ascii=False)
            compared += 1
    assert compared > len(rows) // 2
    with eventstore.open(str(path), readonly=True) as store:
        assert verify(store).ok  # every row decodes through the legacy path
        for key, events in appended.items():
            read = store.read(*key)
            assert [e.event_id for e in read] == [e.event_id for e in events]
            assert all(e.timestamp_ms == 0 for e in read)  # V0b holds none


def _run_killed_cutover(path: Path, log: Path) -> subprocess.CompletedProcess[str]:
    """The cutover, SIGKILLed after the batch that reaches the middle of the window
    (the cutover visits rows in key order, window or not)."""
    keys = [r[:3] for r in history_rows(path)]
    window = [i for i, key in enumerate(keys) if key[0].startswith(WINDOW)]
    kill_after = (window[len(window) // 2] // BATCH) + 1
    assert kill_after * BATCH < len(keys)
    child = ["-m", "tests.migrate_child", "cutover", str(path), str(BATCH), str(kill_after)]
    return subprocess.run(
        [sys.executable, *child, str(log)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_rolling_upgrade_through_a_dual_write_window(tmp_path: Path) -> None:
    path = tmp_path / "runtime.db"
    copy_database(RUNTIME_DB, path)
    source = history_rows(path)
    _v0b_before_the_window(path)
    before_window = history_rows(path)
    appended = _window_events(source)
    with eventstore.open(str(path), write_generation="V0b") as store:
        for (instance_id, execution_id), events in appended.items():
            result = store.append(instance_id, execution_id, events, expected_last_event_id=0)
            assert result.written
    _assert_v0b_readers_read(path, appended)
    check = run_cli("schema", "check", str(path), "--json")
    window = json.loads(check.stdout)["window"]
    assert window == {
        "generation": "V0b",
        "shadowed": len(source),
        "pending": len(source),
        "total": 2 * len(source),
    }
    snapshot = history_rows(path)

    killed = _run_killed_cutover(path, tmp_path / "cutover.jsonl")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    midway = json.loads(run_cli("schema", "check", str(path), "--json").stdout)["window"]
    assert midway["generation"] == "V1"
    assert 0 < midway["pending"] < len(source)
    resumed = run_cli("cutover", str(path), "--batch-size", str(BATCH))
    assert resumed.returncode == 0, resumed.stderr
    assert "(resumed)" in resumed.stdout
    run_id = resumed.stdout.strip().splitlines()[-1].removeprefix("run id: ")

    after = history_rows(path)
    shadow = _shadow(path)
    for row, earlier in zip(after, snapshot, strict=True):
        key = row[:3]
        if row[0].startswith(WINDOW):
            assert row[4] == shadow[key]  # the V1 form the window kept
        else:
            assert row == earlier  # before the window: left to migrate / lazy upcast
    assert [r for r in after if not r[0].startswith(WINDOW)] == before_window
    reading = read_with_duroxide(path, sorted(appended))
    assert not reading.errors.keys() & appended.keys()
    # What the cutover leaves alone: duroxide lists its own instances too, and
    # their rows from before the window are still V0b (`migrate` is for them).
    assert reading.errors and all("deserialize" in m for m in reading.errors.values())
    for key, events in appended.items():
        assert reading.views[key] == [expected_view(e) for e in events], key
        original = [r for r in source if (WINDOW + r[0], r[1]) == key]
        assert [v[3] for v in reading.views[key]] == [
            json.loads(r[4])["timestamp_ms"] for r in original
        ]

    rolled = run_cli("rollback", str(path), "--run", run_id)
    assert rolled.returncode == 0, rolled.stderr
    assert "write generation: V0b" in rolled.stdout
    assert history_rows(path) == snapshot  # byte for byte, created_at included
    with eventstore.open(str(path)) as store:
        assert store.write_generation == "V0b"

    # And the way on: cut over again, then `migrate` the rows from before the
    # window; duroxide then reads every history the database holds.
    assert run_cli("cutover", str(path)).returncode == 0
    migrated = run_cli("migrate", str(path))
    assert migrated.returncode == 0, migrated.stderr
    everything = read_with_duroxide(path, sorted({(r[0], r[1]) for r in history_rows(path)}))
    assert not everything.errors
    for key, events in appended.items():
        assert everything.views[key] == [expected_view(e) for e in events], key
