"""What a retention run did, for the terminal and for `--json`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RetentionReport", "ShardOutcome"]


@dataclass(slots=True)
class ShardOutcome:
    shard: str
    executions: int
    rows: int
    archive: str | None = None
    checksum: str | None = None
    purged_rows: int = 0
    kept_changed: int = 0
    """Executions left in the table: their rows changed after archiving, or
    (SQLite) one holds the table's newest row, whose position must not be
    handed out again; a later run deletes it."""


@dataclass(slots=True)
class RetentionReport:
    dry_run: bool
    cut: str
    shards: list[ShardOutcome] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    """Archives an interrupted run left, finished (verified) or forgotten (writing)."""
    kept_running: int = 0
    kept_last: int = 0
    kept_newest: str | None = None
    """The execution holding the feed's newest row, left for a later run
    (`instance/execution`), see `_Retention.plan`."""
    root_executions: int = 0
    longest_purge_ms: float = 0.0
    """The longest single delete transaction (the write-lock hold on SQLite)."""
    longest_write_ms: float = 0.0
    """The longest of retention's write transactions (purges, index batches)."""
    dropped_partitions: list[str] = field(default_factory=list)
    """Shards whose partition this run dropped (a partitioned PostgreSQL table)."""
    paused_seconds: float = 0.0
    """How long the run paused for appenders (`--throttle`, the default on
    PostgreSQL); 0 at full speed."""

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def purged_rows(self) -> int:
        return sum(s.purged_rows for s in self.shards)

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "cut": self.cut,
            "rows": self.rows,
            "purged_rows": self.purged_rows,
            "kept_running": self.kept_running,
            "kept_last": self.kept_last,
            "kept_newest": self.kept_newest,
            "root_executions": self.root_executions,
            "resumed": self.resumed,
            "longest_purge_ms": round(self.longest_purge_ms, 3),
            "longest_write_ms": round(self.longest_write_ms, 3),
            "dropped_partitions": self.dropped_partitions,
            "paused_seconds": round(self.paused_seconds, 3),
            "shards": [
                {
                    "shard": s.shard,
                    "executions": s.executions,
                    "rows": s.rows,
                    "archive": s.archive,
                    "checksum": s.checksum,
                    "purged_rows": s.purged_rows,
                    "kept_changed": s.kept_changed,
                }
                for s in self.shards
            ],
        }
