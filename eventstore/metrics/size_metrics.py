"""The history-size metrics (what `eventstore sizes` reports), apart from
StoreMetrics, which calls them from its event handlers; and the state
StoreMetrics keeps per execution in flight.

Sizes against duroxide's limits (eventstore.sizes): each execution's stored
bytes when it ends (a histogram and the largest per orchestration), the
largest payload per kind and name, and the histories and payloads past the
limits.
"""

from __future__ import annotations

from typing import Any, Final

from .. import events as ev
from ..events import Event
from ..sizes import EXTERNAL, KIND_LIMITS, MAX_HISTORY_BYTES, PAYLOAD_FIELDS, utf8_len
from .definitions import MetricDefinitions
from .limits import UNKNOWN

__all__ = ["ExecutionState", "SizeMetrics", "Start"]

Start = tuple[int, str, str, int, str]
"""What an open start remembers: kind, name, tag, timestamp_ms, retry attempt."""

_PAYLOAD_LABELS: Final = ("kind", "name")
_LIMIT_LABELS: Final = ("orchestration_name", "limit")
_HISTORY_LABELS: Final = ("orchestration_name",)


class ExecutionState:
    """An execution in flight: what its start said and its open starts."""

    __slots__ = ("bytes", "events", "name", "open", "start_ms", "started", "version")

    def __init__(self) -> None:
        self.started = False
        self.name = UNKNOWN
        self.version = UNKNOWN
        self.start_ms = 0
        self.events = 0
        self.bytes = 0
        self.open: dict[int, Start] = {}


class SizeMetrics(MetricDefinitions):
    """The size figures; StoreMetrics supplies `_child` (the capped children)."""

    _children: dict[tuple[Any, ...], Any]
    _largest_payloads: dict[tuple[str, str], Any]

    def _child(self, metric: Any, names: tuple[str, ...], values: tuple[str, ...]) -> Any:
        raise NotImplementedError

    def _payload(self, execution: ExecutionState, event: Event, name: str) -> None:
        """The largest payload per kind and name, and those past duroxide's limits
        (what a payload is: the one rule, eventstore.sizes.PAYLOAD_FIELDS).

        On the catch-up's path for most events, so only a maximum is kept (no
        histogram: a third of the cost), its child cached by kind and name.
        """
        kind, field = PAYLOAD_FIELDS[type(event)]
        text = getattr(event, field)
        size = len(text) if text.isascii() else utf8_len(text)
        largest = self._largest_payloads.get((kind, name))
        if largest is None:
            largest = self._largest_payload(kind, name)
        if size > largest.value:
            largest.value = size
            if size > KIND_LIMITS[kind]:
                over = "payload" if kind != EXTERNAL else "small_value"
                self._child(self.size_limit_exceeded, _LIMIT_LABELS, (execution.name, over)).inc()
        elif size > KIND_LIMITS[kind]:
            over = "payload" if kind != EXTERNAL else "small_value"
            self._child(self.size_limit_exceeded, _LIMIT_LABELS, (execution.name, over)).inc()

    def _largest_payload(self, kind: str, name: str) -> Any:
        """The max child of (kind, name), caps applied; cached unless folded, so
        that every folded observation is counted."""
        child = self._child(self.payload_max_bytes, _PAYLOAD_LABELS, (kind, name))
        if (id(self.payload_max_bytes), kind, name) in self._children:
            self._largest_payloads[(kind, name)] = child
        return child

    def _ended_sizes(self, execution: ExecutionState, event: Event) -> None:
        """The execution's history size, and the payload its terminal event carries."""
        if not isinstance(event, ev.OrchestrationFailed):
            self._payload(execution, event, execution.name)
        size = execution.bytes
        labels = (execution.name,)
        self._child(self.history_bytes, _HISTORY_LABELS, labels).observe(size)
        largest = self._child(self.history_max_bytes, _HISTORY_LABELS, labels)
        if size > largest.value:
            largest.value = size
        if size > MAX_HISTORY_BYTES:
            self._child(self.size_limit_exceeded, _LIMIT_LABELS, (execution.name, "history")).inc()
