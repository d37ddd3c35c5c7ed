"""A whole store -> batches of spans, in constant memory.

The store's scan gives every row by instance, execution and event id, a page
at a time; each execution's events go through `ExecutionSpans` as they come
and only its spans are kept, until a batch is full. So memory holds one page
of rows, one execution's open starts and one batch of spans, whatever the
size of the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from ..errors import DecodeError
from ..events import Event
from ..store import HistoryStore
from .spans import ExecutionSpans, Span, TraceCounts

__all__ = ["DEFAULT_BATCH", "TraceStream"]

DEFAULT_BATCH: Final = 512
"""Spans per request (the OpenTelemetry SDK's default export batch)."""
_SCAN_PAGE: Final = 2000


class TraceStream:
    """Iterate for batches of spans; `counts` says what was written and what was not.

    `on_undecodable(message)` is told of each row that does not decode (it
    is skipped; the rest of its execution still counts). `progress(rows)`
    is told of every page read.
    """

    def __init__(
        self,
        store: HistoryStore,
        *,
        batch: int = DEFAULT_BATCH,
        on_undecodable: Callable[[str], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.store = store
        self.batch = batch
        self.counts = TraceCounts()
        self._on_undecodable = on_undecodable
        self._progress = progress

    def __iter__(self) -> Iterator[list[Span]]:
        pending: list[Span] = []
        current: ExecutionSpans | None = None
        for instance_id, execution_id, event in self._events():
            if current is None or current.key != (instance_id, execution_id):
                if current is not None:
                    pending += current.finish()
                    if len(pending) >= self.batch:
                        yield pending
                        pending = []
                if current is None or current.instance_id != instance_id:
                    self.counts.instances += 1
                current = ExecutionSpans(instance_id, execution_id, self.counts)
            current.add(event)
        if current is not None:
            pending += current.finish()
        if pending:
            yield pending

    def _events(self) -> Iterator[tuple[str, int, Event]]:
        """Every decodable event with its instance and execution, in scan order."""
        decode = self.store.decode_raw
        for page in self.store.scan(_SCAN_PAGE):
            for row in page:
                if not isinstance(row.instance_id, str):
                    self._undecodable(f"position {row.position}: instance id is not UTF-8 text")
                    continue
                try:
                    event = decode(row).event
                except DecodeError as exc:
                    self._undecodable(f"{exc.location}: {exc.message}")
                    continue
                yield row.instance_id, row.execution_id, event
            if self._progress is not None:
                self._progress(len(page))

    def _undecodable(self, message: str) -> None:
        self.counts.undecodable += 1
        if self._on_undecodable is not None:
            self._on_undecodable(message)
