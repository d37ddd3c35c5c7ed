"""Whole-store commands that reach archived shards: export and verify.

Both stream each archive the manifest lists (never the whole file in
memory) and take an execution from an archive only when the table no longer
holds it and the manifest's index names that archive, the rule
`store.read()` follows: an execution archived by a run that was interrupted
before its delete is still read from the table, and of an execution id
reused after a purge and archived again only the newest copy counts, so
every execution comes out exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArchiveError, DecodeError
from ..store import HistoryStore
from ..store.archive_file import read_archive, verify_archive
from ..store.lifecycle import archived_raw_row
from ..store.lifecycle_protocol import (
    ShardArchiveRow,
)

__all__ = ["ArchiveCheck", "archived_export_rows", "verify_archives"]


def _readable(store: HistoryStore) -> list[ShardArchiveRow]:
    """The archives reads may follow (a `writing` one is not complete)."""
    return [a for a in store.lifecycle.archives() if a.state in ("verified", "purged")]


def _executions(store: HistoryStore, archive: ShardArchiveRow) -> Iterator[list[dict[str, Any]]]:
    """The archive's executions (rows grouped) that the table no longer holds."""
    current: list[dict[str, Any]] = []

    def gone(rows: list[dict[str, Any]]) -> bool:
        instance_id, execution_id = rows[0]["instance_id"], rows[0]["execution_id"]
        if store.last_event_id(instance_id, execution_id) != 0:
            return False  # the table holds it: its rows are the execution
        # An id reused after a purge and archived again: only the copy the
        # index names (the newest) is the execution; older ones are superseded.
        where = store.lifecycle.archived_execution(instance_id, execution_id)
        return where is not None and where.archive_id == archive.archive_id

    for row in read_archive(Path(archive.location), archive.shard):
        key = (row["instance_id"], row["execution_id"])
        if current and key != (current[0]["instance_id"], current[0]["execution_id"]):
            if gone(current):
                yield current
            current = []
        current.append(row)
    if current and gone(current):
        yield current


def archived_export_rows(store: HistoryStore) -> Iterator[dict[str, Any]]:
    """Every archived row whose execution left the table, as export writes rows."""
    for archive in _readable(store):
        for rows in _executions(store, archive):
            yield from rows


@dataclass(slots=True)
class ArchiveCheck:
    archive_id: str
    shard: str
    location: str
    rows: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "archive": self.archive_id,
            "shard": self.shard,
            "location": self.location,
            "rows": self.rows,
            "ok": self.ok,
            "problems": self.problems,
        }


def verify_archives(
    store: HistoryStore, *, progress: Callable[[int], object] | None = None
) -> list[ArchiveCheck]:
    """Each readable archive: its checksum and row count, and every row of the
    executions it alone holds decoded and held against its columns."""
    checks: list[ArchiveCheck] = []
    for archive in _readable(store):
        check = ArchiveCheck(archive.archive_id, archive.shard, archive.location, archive.rows)
        checks.append(check)
        try:
            verify_archive(Path(archive.location), archive.shard, archive.checksum, archive.rows)
            for rows in _executions(store, archive):
                for r in map(archived_raw_row, rows):
                    try:
                        store.check_row(
                            r.instance_id,
                            r.execution_id,
                            r.event_id,
                            r.event_type,
                            r.event_data,
                            None,
                        )
                    except DecodeError as exc:
                        check.problems.append(str(exc))
                if progress is not None:
                    progress(len(rows))
        except ArchiveError as exc:
            check.problems.append(str(exc))
    return checks
