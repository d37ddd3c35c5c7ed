"""Execution keys grouped by shard on disk: retention's plan in constant memory.

The census meets executions in (instance, execution) order, retention
handles them shard by shard, oldest first. Keys wait in one JSON-lines file
per shard in a temporary directory; at most `buffer` keys are held in memory
at any time, whatever the store's size.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec

__all__ = ["SpilledKeys"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(tuple[str, int, int]).decode
_BUFFER: Final = 10_000


class SpilledKeys:
    """(instance, execution, rows) per shard, spilled to files as they come."""

    def __init__(self, directory: Path | None = None, *, buffer: int = _BUFFER) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="eventstore-retention-", dir=directory))
        self._pending: dict[str, list[bytes]] = {}
        self._held = 0
        self._buffer = buffer
        self.counts: dict[str, int] = {}
        self.rows: dict[str, int] = {}

    def add(self, shard: str, instance_id: str, execution_id: int, rows: int) -> None:
        self._pending.setdefault(shard, []).append(_encode((instance_id, execution_id, rows)))
        self.counts[shard] = self.counts.get(shard, 0) + 1
        self.rows[shard] = self.rows.get(shard, 0) + rows
        self._held += 1
        if self._held >= self._buffer:
            self.flush()

    def _path(self, shard: str) -> Path:
        return self._dir / f"{shard}.jsonl"

    def flush(self) -> None:
        for shard, lines in self._pending.items():
            with open(self._path(shard), "ab") as f:
                f.write(b"\n".join(lines) + b"\n")
        self._pending.clear()
        self._held = 0

    def shards(self) -> list[str]:
        """The shards holding keys, oldest first."""
        return sorted(self.counts)

    def keys(self, shard: str) -> Iterator[tuple[str, int, int]]:
        self.flush()
        path = self._path(shard)
        if not path.exists():
            return
        with open(path, "rb") as f:
            for line in f:
                yield _decode(line)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
