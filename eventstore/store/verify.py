"""Whole-store inspection: verify and stats, streaming in constant memory.

Both walk the store in key order (instance, execution, event id), one page at
a time, and keep state only for the execution being read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from ..codec import Generation
from ..errors import DecodeError, Location, RowMismatchError, StoreError
from .history import HistoryStore
from .integrity import IntegrityReport, check_integrity
from .protocol import RawRow
from .rules import ExecutionRules

LEGACY_GENERATIONS: Final = frozenset({Generation.V0, Generation.V0A, Generation.V0B})

__all__ = ["UNDECODABLE_KEPT", "Problem", "StoreStats", "VerifyReport", "stats", "verify"]

UNDECODABLE_KEPT: Final = 1000
"""How many undecodable rows `stats` names (memory stays bounded; it counts them all)."""


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    """undecodable | mismatch | ordering | gap | orphan-completion (see rules.py)
    | integrity | catalog"""
    location: Location
    message: str

    def __str__(self) -> str:
        where = str(self.location)
        return f"{self.kind}: {where}: {self.message}" if where else f"{self.kind}: {self.message}"


@dataclass(slots=True)
class VerifyReport:
    rows: int = 0
    executions: int = 0
    problems: list[Problem] = field(default_factory=list)
    generations: Counter[str] = field(default_factory=Counter)
    legacy_gaps: list[Problem] = field(default_factory=list)
    """Id gaps in executions holding legacy data: tolerated, not problems."""
    integrity: IntegrityReport | None = None
    """The database's own check and the row counts (None when not asked for)."""
    catalog_behind: list[Problem] = field(default_factory=list)
    """Executions the history moved past without the execution catalog (another
    program wrote or deleted rows): not problems; `catalog catch-up` or
    `catalog rebuild` brings it up to date. The first CATALOG_PROBLEMS_KEPT."""
    catalog_behind_count: int = 0

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
    undecodable_rows: list[Problem] = field(default_factory=list)
    """Where the first `UNDECODABLE_KEPT` undecodable rows are, and why (the count has all)."""

    @property
    def timestamp_coverage(self) -> float:
        decoded = self.rows - self.undecodable
        return self.with_timestamp / decoded if decoded else 0.0


def _has_duplicate_keys(data: bytes | str) -> bool:
    """Strict check that the fast decoder does not make (it keeps the last key)."""
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


def rewritten_from_legacy(store: HistoryStore) -> set[tuple[str, int]]:
    """The executions holding rows a migration rewrote from a legacy
    generation, as the migration log records them (a run's change sets name
    each row's `from` generation); rolled-back runs count too."""
    try:
        evolution = store.evolution
    except StoreError:  # a backend that keeps no evolution records migrated nothing
        return set()
    found: set[tuple[str, int]] = set()
    legacy = {str(g) for g in LEGACY_GENERATIONS}
    for run in evolution.migration_runs():
        for entry in evolution.migration_log(run.run_id):
            key = (entry.instance_id, entry.execution_id)
            if key not in found and _changes_from(entry.changes) & legacy:
                found.add(key)
    return found


def _changes_from(changes: str) -> set[str]:
    """The generations a migration log entry's change set rewrote rows from."""
    try:
        parsed = json.loads(changes)
        return {str(c.get("from")) for c in parsed.get("changes", ()) if isinstance(c, dict)}
    except (ValueError, AttributeError, TypeError):
        return set()


class _Verifier:
    """verify's state: the report, and the execution being read (its rules,
    its problems held back until its end, whether it holds legacy rows)."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.report = VerifyReport()
        self.key: tuple[str, int] | None = None
        self.rules = ExecutionRules()
        self.pending: list[Problem] = []
        self.legacy = False
        self._rewritten: set[tuple[str, int]] | None = None

    def row(self, row: RawRow) -> None:
        report = self.report
        report.rows += 1
        key = (row.instance_id, row.execution_id)
        if key != self.key:
            self.end_execution()
            self.key, self.rules, self.legacy = key, ExecutionRules(), False
            report.executions += 1
        where = Location(row.instance_id, row.execution_id, row.event_id, row.position)
        try:
            decoded = self.store.decode_raw(row)
        except DecodeError as exc:
            kind = "mismatch" if isinstance(exc, RowMismatchError) else "undecodable"
            self.skip(row, Problem(kind, where, exc.message))
            return
        report.generations[decoded.generation] += 1
        if _has_duplicate_keys(row.event_data):
            self.skip(row, Problem("undecodable", where, "duplicate keys in event JSON"))
            return
        self.legacy = self.legacy or decoded.generation in LEGACY_GENERATIONS
        for broken in self.rules.check(decoded.event):  # as append does
            self.pending.append(Problem(broken.kind, where, broken.message))

    def skip(self, row: RawRow, problem: Problem) -> None:
        """A corrupt row: reported once, as itself; the rules go on past its id."""
        self.pending.append(problem)
        if isinstance(row.event_id, int):
            self.rules.skip(row.event_id)

    def end_execution(self) -> None:
        """Gaps are problems, except in an execution holding legacy data
        (legacy rows, or rows a migration rewrote from legacy): there they
        are tolerated, counted in `legacy_gaps`, as the wire format says."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        tolerate = any(p.kind == "gap" for p in pending) and (
            self.legacy or self.key in self.rewritten()
        )
        for problem in pending:
            if tolerate and problem.kind == "gap":
                self.report.legacy_gaps.append(problem)
            else:
                self.report.problems.append(problem)

    def rewritten(self) -> set[tuple[str, int]]:
        """The executions a migration rewrote from legacy rows (its log), read
        once, and only when a gap needs it."""
        if self._rewritten is None:
            self._rewritten = rewritten_from_legacy(self.store)
        return self._rewritten


def verify(
    store: HistoryStore,
    *,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
    integrity: bool = True,
    catalog: bool = True,
) -> VerifyReport:
    """Decode every row and check each execution against the history rules; then
    (unless `integrity=False`) run the database's own integrity check and
    compare row counts (eventstore.store.integrity); then (unless
    `catalog=False`) compare the execution catalog with the history."""
    verifier = _Verifier(store)
    for page in store.scan(batch):
        for row in page:
            verifier.row(row)
            if progress is not None:
                progress(1)
    verifier.end_execution()
    report = verifier.report
    if integrity:
        report.integrity = check_integrity(store, report.rows)
        report.problems.extend(
            Problem("integrity", Location(), text) for text in report.integrity.problems
        )
    if catalog:
        check_catalog(store, report)
    return report


CATALOG_PROBLEMS_KEPT: Final = 1000
"""How many catalog mismatches verify names one by one (it counts them all)."""


def check_catalog(store: HistoryStore, report: VerifyReport) -> None:
    """Compare the execution catalog with the history (both streams in key order).

    A catalog row that is wrong is a problem, named by instance and execution.
    One the history merely moved past (rows another program appended or
    deleted since the last catch-up, as duroxide does writing the same file)
    is listed in `catalog_behind`, with how to bring it up to date.
    """
    wrong = behind = 0
    for mismatch in store.catalog_mismatches():
        where = Location(instance_id=mismatch.instance_id, execution_id=mismatch.execution_id)
        if mismatch.behind:
            behind += 1
            if len(report.catalog_behind) < CATALOG_PROBLEMS_KEPT:
                report.catalog_behind.append(Problem("catalog-behind", where, mismatch.message))
            continue
        wrong += 1
        if wrong <= CATALOG_PROBLEMS_KEPT:
            report.problems.append(Problem("catalog", where, mismatch.message))
    if wrong:
        report.problems.append(
            Problem(
                "catalog",
                Location(),
                f"catalog rows disagreeing with the history: {wrong}{_more(wrong)};"
                " `eventstore catalog rebuild TARGET` derives the catalog again",
            )
        )
    report.catalog_behind_count = behind


def _more(count: int) -> str:
    hidden = count - CATALOG_PROBLEMS_KEPT
    return f" ({hidden} more not named)" if hidden > 0 else ""


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
            except DecodeError as exc:
                event_type = str(row.event_type)
                result.undecodable += 1
                if len(result.undecodable_rows) < UNDECODABLE_KEPT:
                    where = exc.location or Location(position=row.position)
                    result.undecodable_rows.append(Problem("undecodable", where, exc.message))
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
