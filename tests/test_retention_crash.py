"""Retention and shards rebase killed anywhere (SIGKILL, a real process), then run again.

The killed run is tests/retention_child.py in a subprocess, killed after a
number of progress ticks (between a census page, an archive member, a purge
batch) or after a wall-clock delay (anywhere, inside a transaction too).
After every kill each row is in the table or in a verified archive, read
back exactly once (`store.read`, `export --include-archived`); running the
command again through the CLI finishes the work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore.lifecycle.archived import archived_export_rows
from eventstore.lifecycle.manifest import shard_view
from eventstore.store import HistoryStore
from eventstore.testing.lifecycle_conformance import fill_days
from tests.test_migrate_crash import ROOT, run_cli

DAYS, PER_DAY = 3, 40
TICKS = [1, 2, 3, 5, 8, 11, 14, 17, 20, 24]
DELAYS = [0.6, 0.9, 1.2]

Key = tuple[str, int, int]


@pytest.fixture(params=["sqlite-file", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("postgres_target_factory")())


def _key(row: dict[str, Any]) -> Key:
    return (row["instance_id"], row["execution_id"], row["event_id"])


def holdings(store: HistoryStore) -> dict[Key, dict[str, Any]]:
    """Table plus archives, each row once (asserted), as export writes rows."""
    table = {_key(r): r for r in store.export_rows()}
    archived = list(archived_export_rows(store))
    keys = [_key(r) for r in archived]
    assert len(keys) == len(set(keys)), "a row is in two archives"
    assert not set(keys) & set(table), "a row is read from the table and an archive"
    return {**table, **{_key(r): r for r in archived}}


def reads(store: HistoryStore, keys: set[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    return {key: store.read(*key) for key in sorted(keys)}


def run_child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.retention_child", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_retention_killed_anywhere_is_finished_by_running_it_again(
    target: str, tmp_path: Path
) -> None:
    archive = str(tmp_path / "archive")
    with eventstore.open(target) as store:
        fill_days(store, DAYS, PER_DAY)
        original = holdings(store)
        executions = {(k[0], k[1]) for k in original}
        before = reads(store, executions)
    killed = 0
    for ticks, delay in [(t, 0.0) for t in TICKS] + [(0, d) for d in DELAYS]:
        child = run_child("retention", target, archive, str(ticks), str(delay))
        killed += child.returncode == -9
        assert child.returncode in (-9, 2), child.stderr
        with eventstore.open(target) as store:
            assert holdings(store) == original
            assert reads(store, executions) == before
    assert killed >= len(TICKS) // 2, "the kills should land before the run ends"
    done = run_cli("retention", target, "--before", "2025-11-23", "--archive", archive, "--json")
    assert done.returncode == 0, done.stderr
    with eventstore.open(target) as store:
        assert holdings(store) == original
        assert reads(store, executions) == before
        left = {
            (k[0], k[1])
            for page in store.scan()
            for k in ((r.instance_id, r.execution_id) for r in page)
        }
        old = {e for e in left if not e[0].startswith(f"i-{DAYS - 1}-")}
        assert old == {(f"i-{d}-{PER_DAY - 1}", 1) for d in range(DAYS - 1)}  # running ones
        assert {a.state for a in store.lifecycle.archives()} == {"purged"}
    assert not list(Path(archive).rglob("*.partial"))
    verify = run_cli("verify", target, "--include-archived")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_rebase_killed_anywhere_leaves_the_manifest_whole(target: str) -> None:
    with eventstore.open(target) as store:
        fill_days(store, 2, 5)
        expected = [{k: v for k, v in s.items()} for s in shard_view(store)]
    for ticks in (1, 2):
        child = run_child("rebase", target, "-", str(ticks), "0")
        assert child.returncode in (-9, 2), child.stderr
    for delay in (0.3, 0.6):
        run_child("rebase", target, "-", "0", str(delay))
    done = run_cli("shards", "rebase", target)
    assert done.returncode == 0, done.stderr
    shown = run_cli("shards", target, "--json")
    assert json.loads(shown.stdout)["shards"] == expected
    with eventstore.open(target) as store:
        recorded = {s.shard: s.executions for s in store.lifecycle.shards()}
    assert recorded == {s["shard"]: s["executions"] for s in expected}
