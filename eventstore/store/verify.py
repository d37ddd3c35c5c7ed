"""Whole-store inspection: verify and stats, streaming in constant memory.

Both walk the store in key order (instance, execution, event id), one page at
a time, and keep state only for the execution being read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .. import events as ev
from .._words import a
from ..codec import UNRECORDED_TYPE, Generation, reconcile_row
from ..errors import DecodeError, Location
from . import HistoryStore

__all__ = ["Problem", "StoreStats", "VerifyReport", "stats", "verify"]


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    """undecodable | mismatch | ordering | orphan-completion"""
    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.location}: {self.message}"


@dataclass(slots=True)
class VerifyReport:
    rows: int = 0
    executions: int = 0
    problems: list[Problem] = field(default_factory=list)
    generations: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class StoreStats:
    rows: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_generation: Counter[str] = field(default_factory=Counter)
    by_type_and_generation: Counter[tuple[str, str]] = field(default_factory=Counter)
    with_timestamp: int = 0
    undecodable: int = 0

    @property
    def timestamp_coverage(self) -> float:
        decoded = self.rows - self.undecodable
        return self.with_timestamp / decoded if decoded else 0.0


class _ExecutionChecker:
    """Per-execution rules: start first, nothing after the end, completions paired."""

    def __init__(self, instance_id: str, execution_id: int, report: VerifyReport) -> None:
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.report = report
        self.types_by_id: dict[int, str] = {}
        self.terminal: int | None = None
        self.seen_any = False

    def where(self, event_id: int, position: int) -> Location:
        return Location(self.instance_id, self.execution_id, event_id, position)

    def add(self, event: ev.Event, position: int) -> None:
        problems = self.report.problems
        event_type = event.event_type
        event_id = event.event_id
        if not self.seen_any and event_type != "OrchestrationStarted":
            problems.append(
                Problem(
                    "ordering",
                    self.where(event_id, position),
                    f"execution starts with {event_type}, not OrchestrationStarted",
                )
            )
        self.seen_any = True
        if self.terminal is not None:
            problems.append(
                Problem(
                    "ordering",
                    self.where(event_id, position),
                    f"{event_type} after the terminal event {self.terminal}",
                )
            )
        if event_type in ev.TERMINAL_TYPES:
            self.terminal = event_id
        sources = ev.COMPLETION_SOURCES.get(event_type)
        if sources is not None:
            source = event.source_event_id
            source_type = self.types_by_id.get(source) if source is not None else None
            if source_type not in sources:
                found = a(source_type) if source_type else "nothing"
                problems.append(
                    Problem(
                        "orphan-completion",
                        self.where(event_id, position),
                        f"{event_type} names source event {source}, which is {found} "
                        f"(expected {' or '.join(sorted(sources))})",
                    )
                )
        self.types_by_id[event_id] = event_type


def _rows(store: HistoryStore, batch: int) -> Iterator[tuple[int, str, int, int, str, bytes | str]]:
    for page in store.scan(batch):
        for row in page:
            yield (
                row.position,
                row.instance_id,
                row.execution_id,
                row.event_id,
                row.event_type,
                row.event_data,
            )


def _has_duplicate_keys(data: bytes | str) -> bool:
    """Strict check that the fast decoder does not make (it keeps the last key)."""
    import json

    found = False

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        nonlocal found
        keys = [k for k, _ in items]
        if len(keys) != len(set(keys)):
            found = True
        return dict(items)

    try:
        json.loads(data, object_pairs_hook=pairs)
    except ValueError:
        return False
    return found


def verify(
    store: HistoryStore,
    *,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Decode every row and check each execution's order and pairing."""
    report = VerifyReport()
    codec = store.codec
    checker: _ExecutionChecker | None = None
    for position, instance_id, execution_id, event_id, event_type, data in _rows(store, batch):
        report.rows += 1
        if progress is not None:
            progress(1)
        if checker is None or (checker.instance_id, checker.execution_id) != (
            instance_id,
            execution_id,
        ):
            checker = _ExecutionChecker(instance_id, execution_id, report)
            report.executions += 1
        where = Location(instance_id, execution_id, event_id, position)
        try:
            decoded = codec.decode_detailed(
                data, instance_id=instance_id, execution_id=execution_id
            )
        except DecodeError as exc:
            report.problems.append(Problem("undecodable", where, exc.message))
            continue
        event = decoded.event
        report.generations[decoded.generation] += 1
        if _has_duplicate_keys(data):
            report.problems.append(Problem("undecodable", where, "duplicate keys in event JSON"))
            continue
        # reconcile_row takes an identity the JSON left out from the row.
        if reconcile_row(event, event_id, event_type, instance_id, execution_id) is not None:
            mismatches = [
                f"{what} in the JSON"
                for what, disagrees in (
                    (f"event_id {event.event_id}", event.event_id != event_id),
                    (
                        f"type {event.event_type}",
                        event.event_type not in (event_type, UNRECORDED_TYPE),
                    ),
                    (f"instance {event.instance_id!r}", event.instance_id != instance_id),
                    (f"execution {event.execution_id}", event.execution_id != execution_id),
                )
                if disagrees
            ]
            report.problems.append(Problem("mismatch", where, "; ".join(mismatches)))
        checker.add(event, position)
    return report


def stats(
    store: HistoryStore,
    *,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> StoreStats:
    """Rows per type and generation, and how many carry a timestamp."""
    result = StoreStats()
    codec = store.codec
    for _position, instance_id, execution_id, _event_id, event_type, data in _rows(store, batch):
        result.rows += 1
        if progress is not None:
            progress(1)
        try:
            decoded = codec.decode_detailed(
                data, instance_id=instance_id, execution_id=execution_id
            )
        except DecodeError:
            result.undecodable += 1
            result.by_type[event_type] += 1
            result.by_type_and_generation[(event_type, "undecodable")] += 1
            continue
        generation = str(Generation(decoded.generation))
        event_type = decoded.event.event_type  # the column may not record it
        result.by_type[event_type] += 1
        result.by_generation[generation] += 1
        result.by_type_and_generation[(event_type, generation)] += 1
        if decoded.event.has_timestamp:
            result.with_timestamp += 1
    return result
