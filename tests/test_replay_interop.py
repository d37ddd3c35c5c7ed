"""Code written for duroxide replays unchanged: run it in the real runtime, replay it.

The runtime (PyPI `duroxide`, the `dev` extra) runs in a child process
(tests/orchestrations/in_duroxide.py) and writes a SQLite database; every
execution must then replay against the very same functions. The probe
orchestrations return what each yield gave them under the runtime, so any
difference in the values the replayer hands out shows up as an output
mismatch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore import events as ev
from eventstore.replay import ReplayMismatchError, replay, replay_all
from eventstore.store import HistoryStore
from tests.orchestrations.corpus import ORCHESTRATIONS
from tests.orchestrations.probes import PROBES

pytest.importorskip("duroxide")
pytestmark = pytest.mark.interop

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def runtime_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("duroxide") / "runtime.db"
    run = subprocess.run(
        [sys.executable, "-m", "tests.orchestrations.in_duroxide", str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return db


@pytest.fixture
def runtime_store(runtime_db: Path) -> Iterator[HistoryStore]:
    with eventstore.open(str(runtime_db), readonly=True) as store:
        yield store


def test_everything_the_runtime_ran_replays(runtime_store: HistoryStore) -> None:
    report = replay_all(runtime_store, {**ORCHESTRATIONS, **PROBES})
    assert report.ok, [f.message for f in report.failures]
    assert len(report.executions) == 14
    assert {e.name for e in report.executions} == {
        "Hello", "FanOut", "Parent", "Child", "Looper", "Failing", "Kv", "Mailbox",
        "ProbeValues", "ProbeStatus", "Echo",
    }  # fmt: skip


def test_the_values_the_runtime_handed_out(runtime_store: HistoryStore) -> None:
    events = runtime_store.read("probe-values-1")
    terminal = events[-1]
    assert isinstance(terminal, ev.OrchestrationCompleted)
    seen = json.loads(terminal.output)
    assert seen["join"] == [
        {"ok": {"v": 1}},
        {"err": "Activity 'Bad' call failed: ValueError: bad 2"},
        {"ok": None},
    ]
    assert seen["race_error"] == ["Exception", "Activity 'Bad' call failed: ValueError: bad 3"]
    assert seen["now_is_int"] is True
    assert seen["typed"] == [{"v": 6}, None]
    result = replay(events, PROBES["ProbeValues"])
    assert result.value == seen


def test_changed_code_fails_on_runtime_histories(runtime_store: HistoryStore) -> None:
    def probe_changed(ctx: Any, _input: Any) -> Generator[Any, Any, Any]:
        yield ctx.all([ctx.schedule_activity("Ok", 1), ctx.schedule_timer(5)])
        return None

    with pytest.raises(ReplayMismatchError) as caught:
        replay(runtime_store.read("probe-values-1"), probe_changed)
    assert caught.value.event_id == 3
    assert "'Bad'" in str(caught.value)
