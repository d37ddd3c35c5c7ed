"""One migration, backfill or rollback at a time per store (issue 15 item 6).

Real processes on both backends: a holder (tests/migration_holder.py) stops
after its first committed batch, while it holds the run lock, and the tests
start their rivals against it through the CLI. No timing: the holder says when
it holds the lock and waits for a line before it goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore.codec import Generation
from eventstore.errors import MigrationLockedError
from eventstore.evolution.migrate import list_runs, migrate, rollback
from tests.conftest import V0A_JSONL, V0B_JSONL, StoreFactory

ROOT = Path(__file__).parent.parent


def legacy_rows(copies: int = 3) -> list[dict[str, Any]]:
    rows = []
    for source in (V0A_JSONL, V0B_JSONL):
        base = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
        for copy in range(copies):
            for row in base:
                rows.append({**row, "instance_id": f"{row['instance_id']}-{source.stem}-{copy}"})
    return rows


def legacy_count(target: str) -> int:
    with eventstore.open(target, readonly=True) as store:
        return sum(
            1
            for page in store.scan(500)
            for row in page
            if store.decode_raw(row).generation != Generation.V1
        )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("eventstore", path=os.path.dirname(sys.executable))
    assert found, "the eventstore console script is not installed in this environment"
    return subprocess.run([found, *args], capture_output=True, text=True, check=False, timeout=300)


class Holder:
    """A migration run in another process, stopped after its first batch."""

    def __init__(self, target: str, kind: str = "migrate") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.migration_holder", target, kind],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("HOLDING "):
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"holder did not start: {line!r} {err}")
        self.run_id = line.split()[1]

    def finish(self) -> int:
        """Let the run go on to its end; the rows it rewrote."""
        out, err = self.proc.communicate("go\n", timeout=300)
        assert self.proc.returncode == 0, err
        return int(out.split()[-1])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=60)
        assert self.proc.returncode == -signal.SIGKILL


@pytest.fixture(params=["sqlite-file", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite-file":
        url = str(tmp_path / "lock.db")
    else:
        factory: Callable[[], str] = request.getfixturevalue("postgres_target_factory")
        url = factory()
    with eventstore.open(url) as store:
        store.import_rows(legacy_rows())
    yield url


def test_racing_migrates_and_a_rollback_are_refused_naming_the_run(target: str) -> None:
    total = legacy_count(target)
    holder = Holder(target)
    try:
        second = cli("migrate", target)
        assert second.returncode == 1, second.stdout
        assert holder.run_id in second.stderr + second.stdout
        assert "only one migration" in second.stderr + second.stdout
        assert "Traceback" not in second.stderr
        back = cli("rollback", target, "--run", holder.run_id)
        assert back.returncode == 1 and holder.run_id in back.stderr + back.stdout
        backfill = cli("backfill-timestamps", target)
        assert backfill.returncode == 1 and holder.run_id in backfill.stderr + backfill.stdout
        # The refused rollback restored nothing: the run is where it was.
        assert legacy_count(target) == total - 20 + _kept_within(target, 20)
    finally:
        rewritten = holder.finish()
    # The one run did every rewrite, and the log says exactly that.
    with eventstore.open(target, readonly=True) as store:
        (run,) = list_runs(store)
        assert run.run_id == holder.run_id and run.status == "completed"
        assert run.rows == rewritten
    assert legacy_count(target) == total - rewritten
    assert rewritten > 0


def _kept_within(target: str, first: int) -> int:
    """Legacy rows among the first `first` rows that a migration keeps (SystemCall)."""
    with eventstore.open(target, readonly=True) as store:
        rows = next(iter(store.scan(first)))
        return sum(1 for row in rows if row.event_type == "SystemCall")


def test_a_killed_holder_does_not_leave_the_store_locked(target: str) -> None:
    holder = Holder(target)
    holder.kill()
    again = cli("migrate", target)
    assert again.returncode == 0, again.stderr
    assert "(resumed)" in again.stdout and holder.run_id in again.stdout
    with eventstore.open(target, readonly=True) as store:
        (run,) = list_runs(store)
        assert run.status == "completed"
    # What is left legacy has no V1 form (legacy SystemCall events).
    with eventstore.open(target, readonly=True) as store:
        left = [
            row.event_type
            for page in store.scan(500)
            for row in page
            if store.decode_raw(row).generation != Generation.V1
        ]
    assert set(left) == {"SystemCall"}


def test_a_rollback_in_progress_blocks_a_migration(target: str) -> None:
    with eventstore.open(target) as store:
        report = migrate(store, batch_size=50)
        assert report.run_id is not None
        refused: list[str] = []

        def rival(batch: int) -> None:
            if batch == 1:
                result = cli("migrate", target)
                refused.append(result.stderr + result.stdout)

        rollback(store, report.run_id, batch_size=20, on_batch=rival)
    assert len(refused) == 1 and "rollback of run " + report.run_id in refused[0]


def test_the_lock_is_refused_in_process_too(store_factory: StoreFactory, backend_name: str) -> None:
    store = store_factory()
    other = store if backend_name == "sqlite-memory" else store_factory(reopen=store)
    with (
        store.backend.migration_lock("first"),
        pytest.raises(MigrationLockedError, match="locked for a run"),
        other.backend.migration_lock("second"),
    ):
        pass
    with other.backend.migration_lock("again"):
        pass
