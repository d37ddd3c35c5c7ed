"""Whole-store inspection: verify and stats, streaming in constant memory.

Both walk the store in key order (instance, execution, event id), one page at
a time, and keep state only for the execution being read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import events as ev
from .._words import a
from ..errors import DecodeError, Location, RowMismatchError
from .history import HistoryStore

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
    checker: _ExecutionChecker | None = None
    for page in store.scan(batch):
        for row in page:
            report.rows += 1
            if progress is not None:
                progress(1)
            key = (row.instance_id, row.execution_id)
            if checker is None or (checker.instance_id, checker.execution_id) != key:
                checker = _ExecutionChecker(row.instance_id, row.execution_id, report)
                report.executions += 1
            where = Location(row.instance_id, row.execution_id, row.event_id, row.position)
            try:
                decoded = store.decode_raw(row)
            except RowMismatchError as exc:
                report.problems.append(Problem("mismatch", where, exc.message))
                continue
            except DecodeError as exc:
                report.problems.append(Problem("undecodable", where, exc.message))
                continue
            report.generations[decoded.generation] += 1
            if _has_duplicate_keys(row.event_data):
                report.problems.append(
                    Problem("undecodable", where, "duplicate keys in event JSON")
                )
                continue
            checker.add(decoded.event, row.position)
    return report


def stats(
    store: HistoryStore,
    *,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> StoreStats:
    """Rows per type and generation, and how many carry a timestamp."""
    result = StoreStats()
    for page in store.scan(batch):
        for row in page:
            result.rows += 1
            if progress is not None:
                progress(1)
            try:
                decoded = store.decode_raw(row)
            except DecodeError:
                event_type = str(row.event_type)
                result.undecodable += 1
                result.by_type[event_type] += 1
                result.by_type_and_generation[(event_type, "undecodable")] += 1
                continue
            generation = str(decoded.generation)
            event_type = decoded.event.event_type  # the column may not record it
            result.by_type[event_type] += 1
            result.by_generation[generation] += 1
            result.by_type_and_generation[(event_type, generation)] += 1
            if decoded.event.has_timestamp:
                result.with_timestamp += 1
    return result
