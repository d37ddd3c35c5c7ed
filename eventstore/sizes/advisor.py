"""The history-size advisor behind `eventstore sizes`: one pass over the store.

Per execution: its events and stored bytes (each row's event_data, what
duroxide's history limit sums), against MAX_HISTORY_BYTES. Per payload (the
`payloads` rule): its bytes against its kind's limit, summed and maximised by
orchestration and by activity. Per orchestration: how large its executions
grow, and whether they grow past a threshold at which the advice is to
continue as new.

Streams: the store's scan gives rows by instance, execution and event id;
memory holds one execution's open names, the N largest executions and
payloads (heaps), and one aggregate per orchestration, activity and event
name (at most `max_names` per kind; more fold into "other"), whatever the
store's size.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from .. import events as ev
from ..errors import DecodeError
from ..store import HistoryStore
from ..store.catalog import RUNNING, status_of
from ..store.row_types import RawRow
from .limits import MAX_HISTORY_BYTES, MAX_PAYLOAD_BYTES, MAX_SMALL_VALUE_BYTES, SOURCE
from .payloads import KIND_LIMITS, PAYLOAD_FIELDS, utf8_len

__all__ = [
    "DEFAULT_THRESHOLD",
    "ExecutionSize",
    "NameSizes",
    "OrchestrationSizes",
    "PayloadSize",
    "SizeReport",
    "measure",
]

DEFAULT_THRESHOLD: Final = 1024 * 1024
"""An execution past 1 MiB (a fifth of duroxide's limit) should continue as new."""
DEFAULT_TOP: Final = 10
DEFAULT_MAX_NAMES: Final = 10_000
OTHER: Final = "other"


@dataclass(frozen=True, slots=True)
class ExecutionSize:
    instance_id: str
    execution_id: int
    orchestration: str | None
    status: str
    events: int
    bytes: int


@dataclass(frozen=True, slots=True)
class PayloadSize:
    kind: str
    name: str
    instance_id: str
    execution_id: int
    event_id: int
    field: str
    bytes: int

    @property
    def limit(self) -> int:
        return KIND_LIMITS[self.kind]


@dataclass(slots=True)
class NameSizes:
    """The payloads of one orchestration, activity or external event name."""

    kind: str
    name: str
    payloads: int = 0
    total_bytes: int = 0
    max_bytes: int = 0
    largest: PayloadSize | None = None


@dataclass(slots=True)
class OrchestrationSizes:
    name: str
    executions: int = 0
    running: int = 0
    continued_as_new: int = 0
    max_events: int = 0
    max_bytes: int = 0
    total_bytes: int = 0
    over_threshold: int = 0
    over_limit: int = 0
    largest: ExecutionSize | None = None

    def advice(self, threshold: int) -> str | None:
        if self.over_limit:
            return (
                f"{self.over_limit} execution(s) past duroxide's history limit: "
                "continue as new long before it"
            )
        if self.over_threshold:
            carried = " (already continues as new: sooner)" if self.continued_as_new else ""
            return (
                f"{self.over_threshold} execution(s) grew past {threshold:,} bytes: "
                f"continue as new{carried}"
            )
        return None


@dataclass(slots=True)
class SizeReport:
    threshold_bytes: int
    top: int
    executions: int = 0
    events: int = 0
    bytes: int = 0
    executions_over_limit: int = 0
    executions_over_threshold: int = 0
    payloads: int = 0
    payloads_over_limit: int = 0
    undecodable: int = 0
    names_folded: int = 0
    largest_executions: list[ExecutionSize] = field(default_factory=list)
    largest_payloads: list[PayloadSize] = field(default_factory=list)
    by_name: dict[tuple[str, str], NameSizes] = field(default_factory=dict)
    orchestrations: dict[str, OrchestrationSizes] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        threshold = self.threshold_bytes
        return {
            "limits": {
                "history_bytes": MAX_HISTORY_BYTES,
                "payload_bytes": MAX_PAYLOAD_BYTES,
                "small_value_bytes": MAX_SMALL_VALUE_BYTES,
                "source": SOURCE,
            },
            "threshold_bytes": threshold,
            "executions": {
                "count": self.executions,
                "events": self.events,
                "bytes": self.bytes,
                "over_limit": self.executions_over_limit,
                "over_threshold": self.executions_over_threshold,
                "largest": [
                    {**asdict(e), "percent_of_limit": _percent(e.bytes, MAX_HISTORY_BYTES)}
                    for e in self.largest_executions
                ],
            },
            "payloads": {
                "count": self.payloads,
                "over_limit": self.payloads_over_limit,
                "largest": [
                    {**asdict(p), "limit": p.limit, "percent_of_limit": _percent(p.bytes, p.limit)}
                    for p in self.largest_payloads
                ],
                "by_name": [_name_json(n) for n in self.names_by_largest()],
            },
            "orchestrations": [
                {
                    **{k: v for k, v in asdict(o).items() if k != "largest"},
                    "largest": asdict(o.largest) if o.largest else None,
                    "advice": o.advice(threshold),
                }
                for o in self.orchestrations_by_largest()
            ],
            "undecodable": self.undecodable,
            "names_folded": self.names_folded,
        }

    def names_by_largest(self) -> list[NameSizes]:
        return sorted(self.by_name.values(), key=lambda n: (-n.max_bytes, n.kind, n.name))

    def orchestrations_by_largest(self) -> list[OrchestrationSizes]:
        return sorted(self.orchestrations.values(), key=lambda o: (-o.max_bytes, o.name))


def _percent(size: int, limit: int) -> float:
    return round(100.0 * size / limit, 2)


def _name_json(sizes: NameSizes) -> dict[str, Any]:
    return {
        "kind": sizes.kind,
        "name": sizes.name,
        "payloads": sizes.payloads,
        "total_bytes": sizes.total_bytes,
        "max_bytes": sizes.max_bytes,
        "mean_bytes": round(sizes.total_bytes / sizes.payloads, 1) if sizes.payloads else 0,
        "largest": asdict(sizes.largest) if sizes.largest else None,
    }


class _Execution:
    """The execution being read: its counts and the names its completions need."""

    __slots__ = ("bytes", "events", "execution_id", "instance_id", "name", "names", "status")

    def __init__(self, instance_id: str, execution_id: int) -> None:
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.events = 0
        self.bytes = 0
        self.name: str | None = None
        self.status = RUNNING
        self.names: dict[int, str] = {}


class _Measure:
    """One pass: `row` per stored row in scan order, then `report`."""

    def __init__(self, report: SizeReport, max_names: int) -> None:
        self.report = report
        self.max_names = max_names
        self._names_per_kind: dict[str, int] = {}
        self._executions_heap: list[tuple[int, int, ExecutionSize]] = []
        self._payloads_heap: list[tuple[int, int, PayloadSize]] = []
        self._sequence = itertools.count()
        self.current: _Execution | None = None

    def row(self, row: RawRow, event: ev.Event | None) -> None:
        current = self.current
        if current is None or (current.instance_id, current.execution_id) != (
            row.instance_id,
            row.execution_id,
        ):
            self.end_execution()
            current = self.current = _Execution(str(row.instance_id), row.execution_id)
        data = row.event_data
        current.events += 1
        current.bytes += len(data) if isinstance(data, bytes) else utf8_len(data)
        if event is not None:
            self._event(current, event)

    def _event(self, current: _Execution, event: ev.Event) -> None:
        if isinstance(event, ev.OrchestrationStarted):
            current.name = event.name
        # The catalog's one status rule (a failure that is a cancellation
        # says cancelled), so sizes, ls and the viewer agree.
        current.status = status_of(event)
        if isinstance(event, ev.ActivityScheduled | ev.SubOrchestrationScheduled):
            current.names[event.event_id] = event.name
        found = PAYLOAD_FIELDS.get(type(event))
        if found is None:
            return
        kind, field_name = found
        if isinstance(event, ev.ActivityScheduled) and event.is_system_call:
            return  # runtime bookkeeping, as in the metrics
        name = self._payload_name(current, event)
        if name is None:
            return
        size = utf8_len(getattr(event, field_name))
        payload = PayloadSize(
            kind, name, current.instance_id, current.execution_id, event.event_id, field_name, size
        )
        self._payload(payload)

    @staticmethod
    def _payload_name(current: _Execution, event: ev.Event) -> str | None:
        own = getattr(event, "name", None)
        if isinstance(own, str) and not isinstance(event, ev.OrchestrationStarted):
            return own
        if isinstance(event, ev.ActivityCompleted | ev.SubOrchestrationCompleted):
            source = event.source_event_id
            return current.names.pop(source, None) if source is not None else None
        return current.name if current.name is not None else (getattr(event, "name", None))

    def _payload(self, payload: PayloadSize) -> None:
        report = self.report
        report.payloads += 1
        if payload.bytes > payload.limit:
            report.payloads_over_limit += 1
        sizes = self._name_sizes(payload.kind, payload.name)
        sizes.payloads += 1
        sizes.total_bytes += payload.bytes
        if sizes.largest is None or payload.bytes > sizes.max_bytes:
            sizes.max_bytes = payload.bytes
            sizes.largest = payload
        _keep_largest(self._payloads_heap, report.top, payload.bytes, next(self._sequence), payload)

    def _name_sizes(self, kind: str, name: str) -> NameSizes:
        by_name = self.report.by_name
        sizes = by_name.get((kind, name))
        if sizes is not None:
            return sizes
        if self._names_per_kind.get(kind, 0) >= self.max_names:
            self.report.names_folded += 1
            name = OTHER
            sizes = by_name.get((kind, name))
            if sizes is not None:
                return sizes
        self._names_per_kind[kind] = self._names_per_kind.get(kind, 0) + 1
        sizes = by_name[(kind, name)] = NameSizes(kind, name)
        return sizes

    def end_execution(self) -> None:
        current, self.current = self.current, None
        if current is None:
            return
        report = self.report
        size = ExecutionSize(
            current.instance_id,
            current.execution_id,
            current.name,
            current.status,
            current.events,
            current.bytes,
        )
        report.executions += 1
        report.events += size.events
        report.bytes += size.bytes
        over_limit = size.bytes > MAX_HISTORY_BYTES
        over_threshold = size.bytes > report.threshold_bytes
        report.executions_over_limit += over_limit
        report.executions_over_threshold += over_threshold
        _keep_largest(self._executions_heap, report.top, size.bytes, next(self._sequence), size)
        self._orchestration(size, over_limit=over_limit, over_threshold=over_threshold)

    def _orchestration(
        self, size: ExecutionSize, *, over_limit: bool, over_threshold: bool
    ) -> None:
        name = size.orchestration if size.orchestration is not None else "(no start)"
        sizes = self.report.orchestrations.get(name)
        if sizes is None:
            if len(self.report.orchestrations) >= self.max_names:
                self.report.names_folded += 1
                name = OTHER
            sizes = self.report.orchestrations.setdefault(name, OrchestrationSizes(name))
        sizes.executions += 1
        sizes.running += size.status == RUNNING
        sizes.continued_as_new += size.status == "continued_as_new"
        sizes.max_events = max(sizes.max_events, size.events)
        sizes.total_bytes += size.bytes
        sizes.over_threshold += over_threshold
        sizes.over_limit += over_limit
        if sizes.largest is None or size.bytes > sizes.max_bytes:
            sizes.max_bytes = size.bytes
            sizes.largest = size

    def finish(self) -> SizeReport:
        self.end_execution()
        report = self.report
        report.largest_executions = [e for _, _, e in sorted(self._executions_heap, reverse=True)]
        report.largest_payloads = [p for _, _, p in sorted(self._payloads_heap, reverse=True)]
        return report


def _keep_largest(
    heap: list[tuple[int, int, Any]], top: int, size: int, seq: int, item: Any
) -> None:
    # The sequence breaks ties (items never compare): the first seen of equal sizes stays.
    entry = (size, -seq, item)
    if len(heap) < top:
        heapq.heappush(heap, entry)
    elif top and entry > heap[0]:
        heapq.heapreplace(heap, entry)


def measure(
    store: HistoryStore,
    *,
    threshold_bytes: int = DEFAULT_THRESHOLD,
    top: int = DEFAULT_TOP,
    max_names: int = DEFAULT_MAX_NAMES,
    on_undecodable: Callable[[str], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> SizeReport:
    """Sizes of every execution and payload in the store (one scan)."""
    if threshold_bytes < 1 or top < 0 or max_names < 1:
        raise ValueError("threshold and max_names must be positive, top not negative")
    pass_ = _Measure(SizeReport(threshold_bytes, top), max_names)
    for page in store.scan(2000):
        for row, event in _decoded(store, page, pass_.report, on_undecodable):
            pass_.row(row, event)
        if progress is not None:
            progress(len(page))
    return pass_.finish()


def _decoded(
    store: HistoryStore,
    page: Iterable[RawRow],
    report: SizeReport,
    on_undecodable: Callable[[str], None] | None,
) -> Iterable[tuple[RawRow, ev.Event | None]]:
    """Each row with its event, or None when it does not decode (its bytes still count)."""
    for row in page:
        if not isinstance(row.instance_id, str):
            report.undecodable += 1
            if on_undecodable is not None:
                on_undecodable(f"position {row.position}: instance id is not UTF-8 text")
            continue
        try:
            event: ev.Event | None = store.decode_raw(row).event
        except DecodeError as exc:
            report.undecodable += 1
            if on_undecodable is not None:
                on_undecodable(f"{exc.location}: {exc.message}")
            event = None
        yield row, event
