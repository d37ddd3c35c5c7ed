"""verify's second half: the database's own integrity check, and rows counted three ways.

The decoding half of `verify` sees only the rows the store's scan reaches,
and the scan walks the primary-key index: a damaged index hides rows from it
without a single undecodable row. So verify also asks the backend (when it
is `IntegrityCheckable`) to run the database's own checker (SQLite `PRAGMA
integrity_check`, PostgreSQL amcheck) and to count the history table from
the table itself and through its indexes, and reports every disagreement: a
check message, a count that differs from the table's, the scan's count that
differs from either. A backend without a checker still has its scan
compared with its `count()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._words import plural
from ..errors import EventStoreError
from .protocol import IntegrityCheckable, IntegrityResult

if TYPE_CHECKING:
    from .history import HistoryStore

__all__ = ["IntegrityReport", "check_integrity"]

_NO_CHECKER = "not available: this backend has no integrity check (IntegrityCheckable)"


@dataclass(slots=True)
class IntegrityReport:
    tool: str = ""
    ran: bool = False
    note: str = ""
    table_rows: int | None = None
    index_rows: dict[str, int] = field(default_factory=dict)
    scanned_rows: int = 0
    problems: list[str] = field(default_factory=list)
    """Each a sentence naming what disagrees, and where."""

    def summary(self) -> str:
        counts = ", ".join(f"{n} via {name}" for name, n in self.index_rows.items())
        rows = "" if self.table_rows is None else f"{plural(self.table_rows, 'row')} in the table"
        outcome = "not run" if not self.ran else "FAILED" if self.problems else "ok"
        parts = [
            f"{self.tool}: {outcome}",
            rows + (f" ({counts})" if counts else ""),
            self.note,
        ]
        return "; ".join(p for p in parts if p)

    def as_dict(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "ran": self.ran,
            "note": self.note,
            "table_rows": self.table_rows,
            "index_rows": self.index_rows,
            "scanned_rows": self.scanned_rows,
            "problems": self.problems,
        }


def check_integrity(store: HistoryStore, scanned_rows: int) -> IntegrityReport:
    """Run the backend's check; compare its counts with the rows verify's scan read."""
    report = IntegrityReport(scanned_rows=scanned_rows)
    backend = store.backend
    try:
        if isinstance(backend, IntegrityCheckable):
            result = backend.integrity_check()
        else:  # a backend without a checker: the counts can still disagree
            result = IntegrityResult("integrity check", False, [], backend.count(), {}, _NO_CHECKER)
    except EventStoreError as exc:
        # A check that cannot even run on this file is itself a finding.
        report.tool, report.problems = "integrity check", [f"the check could not run: {exc}"]
        return report
    report.tool, report.ran, report.note = result.tool, result.ran, result.note
    report.table_rows, report.index_rows = result.table_rows, dict(result.index_rows)
    report.problems.extend(f"{result.tool} reports: {text}" for text in result.problems)
    for name, count in result.index_rows.items():
        if count != result.table_rows:
            report.problems.append(
                f"{plural(count, 'row')} counted via {name} but {result.table_rows} in the table"
            )
    if scanned_rows != result.table_rows:
        report.problems.append(
            f"verify's scan read {plural(scanned_rows, 'row')}"
            f" but the table holds {result.table_rows}"
        )
    return report
