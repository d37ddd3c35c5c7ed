"""Replay every execution of a store or a JSONL file against registered code."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import events as ev
from ..codec import Codec
from ..errors import (
    EventStoreError,
    InvalidHistoryError,
    NondeterminismError,
    ReplayMismatchError,
)
from ..events import Event
from ..store import HistoryStore
from ..testing.jsonl import load_history
from ._engine import Orchestration, replay
from ._result import ReplayResult

__all__ = [
    "ExecutionReplay",
    "Orchestrations",
    "ReplayReport",
    "find_orchestration",
    "iter_executions",
    "read_jsonl_executions",
    "replay_all",
]

Orchestrations = Mapping[Any, Orchestration]
"""Orchestration name, (name, version) or "name@version" -> generator function."""

Outcome = Literal["ok", "nondeterministic", "unregistered", "invalid"]


@dataclass(frozen=True, slots=True)
class ExecutionReplay:
    """How one execution replayed."""

    instance_id: str
    execution_id: int
    name: str | None
    version: str | None
    outcome: Outcome
    message: str = ""
    result: ReplayResult | None = None
    error: EventStoreError | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for `eventstore replay --json`)."""
        data: dict[str, Any] = {
            "instance_id": self.instance_id,
            "execution_id": self.execution_id,
            "name": self.name,
            "version": self.version,
            "outcome": self.outcome,
            "message": self.message,
        }
        if self.result is not None:
            data["status"] = self.result.status
            data["pending_actions"] = [a.describe() for a in self.result.pending_actions]
        if isinstance(self.error, ReplayMismatchError):
            data["event_id"] = self.error.event_id
            data["recorded"] = self.error.recorded
            data["attempted"] = self.error.attempted
            data["where"] = self.error.where
        return data


@dataclass(slots=True)
class ReplayReport:
    """Per-execution outcomes of `replay_all`."""

    executions: list[ExecutionReplay] = field(default_factory=list)
    skip_unregistered: bool = False

    @property
    def failures(self) -> list[ExecutionReplay]:
        return [
            e
            for e in self.executions
            if not e.ok and not (e.outcome == "unregistered" and self.skip_unregistered)
        ]

    @property
    def ok(self) -> bool:
        return not self.failures

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.executions:
            counts[e.outcome] = counts.get(e.outcome, 0) + 1
        return counts

    def summary(self) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))
        return f"{len(self.executions)} executions replayed: {counts or 'none'}"


def find_orchestration(
    orchestrations: Orchestrations, name: str, version: str | None
) -> Orchestration | None:
    """The function registered for (name, version), "name@version", or name."""
    if version:
        for key in ((name, version), f"{name}@{version}"):
            found = orchestrations.get(key)
            if found is not None:
                return found
    return orchestrations.get(name)


def read_jsonl_executions(
    path: str | os.PathLike[str], *, codec: Codec | None = None
) -> dict[tuple[str, int], list[Event]]:
    """Executions of a JSONL file, by (instance, execution), each in event-id order.

    Each line is either a whole row as `eventstore export` writes it (with
    `event_data`) or one event's stored JSON (a fixture line); see
    `eventstore.testing.load_history`.
    """
    executions: dict[tuple[str, int], list[Event]] = {}
    for event in load_history(path, codec=codec):
        executions.setdefault((event.instance_id, event.execution_id), []).append(event)
    for events in executions.values():
        events.sort(key=lambda e: e.event_id)
    return executions


def iter_executions(
    source: HistoryStore | str | os.PathLike[str],
    instance_ids: Iterable[str] | None = None,
) -> Iterator[tuple[str, int, list[Event] | EventStoreError]]:
    """(instance, execution, events or the error reading them) for every execution.

    `instance_ids` limits it to those instances.
    """
    wanted = None if instance_ids is None else set(instance_ids)
    if isinstance(source, HistoryStore):
        # Executions retention moved to archives replay too (read follows them).
        names = source.instances(include_archived=True) if wanted is None else sorted(wanted)
        for instance_id in names:
            if isinstance(instance_id, bytes):  # a hand-written row (see verify)
                yield repr(bytes(instance_id)), 0, _not_text(bytes(instance_id))
                continue
            for execution_id in source.executions(instance_id, include_archived=True):
                try:
                    events: list[Event] | EventStoreError = source.read(instance_id, execution_id)
                except EventStoreError as exc:
                    events = exc
                yield instance_id, execution_id, events
        return
    for (instance_id, execution_id), found in sorted(read_jsonl_executions(source).items()):
        if wanted is None or instance_id in wanted:
            yield instance_id, execution_id, found


def _not_text(instance_id: bytes) -> EventStoreError:
    return EventStoreError(
        f"instance id {instance_id!r} is not UTF-8 text: its rows cannot be replayed"
        " (`eventstore verify` names them by position)"
    )


def _kv_after(events: list[Event], kv: dict[str, str]) -> dict[str, str]:
    kv = dict(kv)
    for event in events:
        if isinstance(event, ev.KeyValueSet):
            kv[event.key] = event.value
        elif isinstance(event, ev.KeyValueCleared):
            kv.pop(event.key, None)
        elif isinstance(event, ev.KeyValuesCleared):
            kv.clear()
    return kv


def replay_all(
    source: HistoryStore | str | os.PathLike[str],
    orchestrations: Orchestrations,
    *,
    skip_unregistered: bool = False,
    instance_ids: Iterable[str] | None = None,
) -> ReplayReport:
    """Replay every execution of `source` (a store, or a JSONL file's path).

    Each execution is replayed with the function registered for its
    orchestration name (and version); executions of unregistered names are
    reported as `unregistered` (not failures when `skip_unregistered`). The
    key-value store of an execution starts from what earlier executions of the
    instance left. `instance_ids` limits the replay to those instances.
    """
    report = ReplayReport(skip_unregistered=skip_unregistered)
    kv_by_instance: dict[str, dict[str, str]] = {}
    for instance_id, execution_id, events in iter_executions(source, instance_ids):
        if isinstance(events, EventStoreError):
            found = ExecutionReplay(
                instance_id, execution_id, None, None, "invalid", str(events), error=events
            )
        else:
            kv = kv_by_instance.get(instance_id, {})
            kv_by_instance[instance_id] = _kv_after(events, kv)
            found = _replay_execution(instance_id, execution_id, events, orchestrations, kv)
        report.executions.append(found)
    return report


def _replay_execution(
    instance_id: str,
    execution_id: int,
    events: list[Event],
    orchestrations: Orchestrations,
    kv: dict[str, str],
) -> ExecutionReplay:
    """How one execution replays with the function registered for it."""
    started = events[0] if events else None
    if not isinstance(started, ev.OrchestrationStarted):
        first = started.event_type if started else "nothing"
        message = f"starts with {first}, not OrchestrationStarted"
        return ExecutionReplay(instance_id, execution_id, None, None, "invalid", message)
    name, version = started.name, started.version
    function = find_orchestration(orchestrations, name, version)
    if function is None:
        message = f"no orchestration registered for {name!r} (version {version})"
        return ExecutionReplay(instance_id, execution_id, name, version, "unregistered", message)
    try:
        result = replay(events, function, kv=kv)
    except NondeterminismError as exc:
        return ExecutionReplay(
            instance_id, execution_id, name, version, "nondeterministic", exc.message, error=exc
        )
    except InvalidHistoryError as exc:
        return ExecutionReplay(
            instance_id, execution_id, name, version, "invalid", exc.message, error=exc
        )
    return ExecutionReplay(
        instance_id, execution_id, name, version, "ok", result.status, result=result
    )
