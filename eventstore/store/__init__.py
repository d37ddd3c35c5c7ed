"""HistoryStore: the backend-neutral store and its append contract.

Every rule lives here once; backends (`eventstore.backends.sqlite`, `eventstore.backends.postgres`)
only move rows. The two hot routes are short on purpose:

* append: validate and fill (one pass) -> encode -> one typed decode of the
  whole batch (so no row is written that a reader would refuse) -> one
  transaction: read the last stored id, check, insert.
* read: fetch the execution in one piece where the backend can pack it
  (SQLite), else row by row -> decode (the packed form in one call) -> check
  each row agrees with the event it holds. proposals/storage-hot-paths.md
  gives the costs.
"""

from __future__ import annotations

import contextlib
import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgspec

from .. import events as ev
from ..codec import (
    DEFAULT_CODEC,
    UNRECORDED_TYPE,
    Codec,
    Decoded,
    Generation,
    RowDecodeError,
    reconcile_row,
)
from ..errors import (
    ConcurrencyError,
    ConflictError,
    DecodeError,
    EventOrderError,
    EventStoreError,
    IdentityMismatchError,
    InvalidEventError,
    Location,
    MissingStartError,
    PositionsRenumberedError,
    RowMismatchError,
    TargetError,
)
from ..events import Event, EventBase, UnknownEvent
from .protocol import (
    Backend,
    ExecutionRow,
    FeedRow,
    InsertRow,
    NewEvents,
    RawRow,
    StoredRow,
    Writer,
)

__all__ = [
    "DEFAULT_WRITER_VERSION",
    "AppendResult",
    "ExecutionStatus",
    "FeedRecord",
    "HistoryStore",
    "ImportReport",
    "InstanceSummary",
    "StoreObserver",
    "Transaction",
    "open",
    "row_location",
]

DEFAULT_WRITER_VERSION: Final = "0.1.32"
"""duroxide_version stamped on appended events that carry none: the duroxide
release whose wire format eventstore writes (configurable per store)."""

_SEMVER: Final = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class FeedRecord(msgspec.Struct, frozen=True, gc=False):
    """One event of the global feed, with the position to resume after."""

    position: int
    instance_id: str
    execution_id: int
    event: Event


class AppendResult(msgspec.Struct, frozen=True, gc=False):
    """What an append stored: the events as written (stamped and filled)."""

    events: list[Event]
    last_event_id: int
    written: bool
    """False when the batch was already stored whole (an idempotent retry)."""


class ExecutionStatus:
    RUNNING: Final = "Running"
    COMPLETED: Final = "Completed"
    FAILED: Final = "Failed"
    CONTINUED_AS_NEW: Final = "ContinuedAsNew"


_STATUS_BY_TERMINAL: Final = {
    "OrchestrationCompleted": ExecutionStatus.COMPLETED,
    "OrchestrationFailed": ExecutionStatus.FAILED,
    "OrchestrationContinuedAsNew": ExecutionStatus.CONTINUED_AS_NEW,
}


@dataclass(frozen=True, slots=True)
class InstanceSummary:
    instance_id: str
    orchestration_name: str | None
    orchestration_version: str | None
    status: str
    executions: int
    latest_execution: int
    events: int


@dataclass(slots=True)
class ImportReport:
    inserted: int = 0
    skipped_identical: int = 0


class StoreObserver(Protocol):
    """Told about appends and decodes (the metrics module implements this)."""

    def appended(self, events: Sequence[Event], seconds: float) -> None: ...

    def decoded(self, generation: Generation, count: int) -> None: ...

    def decode_failed(self, location: Location) -> None: ...


def row_location(
    instance_id: str, execution_id: int, event_id: int | None, position: int | None
) -> Location:
    return Location(
        instance_id=instance_id, execution_id=execution_id, event_id=event_id, position=position
    )


_FILLABLE: Final = ("instance_id", "execution_id", "timestamp_ms", "duroxide_version")
_KNOWN_TYPES: Final = frozenset(ev.EVENT_TYPES.values())
_EVENT_TYPE: Final = operator.attrgetter("event_type")


class _Appender:
    """The append contract, shared by HistoryStore.append and Transaction.append."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    def prepare(
        self,
        instance_id: str,
        execution_id: int,
        events: Sequence[Event],
        expected_last_event_id: int | None,
    ) -> tuple[list[Event], NewEvents]:
        """Check, fill and encode a batch: everything an append does outside the
        database. Per event this is a handful of comparisons and at most one
        `replace`; encoding and the read-back check run over the whole batch."""
        store = self.store
        if not isinstance(instance_id, str) or not instance_id or "\x00" in instance_id:
            # NUL: PostgreSQL cannot store it in TEXT, so no backend accepts it.
            raise InvalidEventError("instance_id must be a non-empty string without NUL")
        if type(execution_id) is not int or execution_id < 1:
            raise InvalidEventError(
                f"execution_id must be a positive integer, not {execution_id!r}"
            )
        if expected_last_event_id is not None and (
            type(expected_last_event_id) is not int or expected_last_event_id < 0
        ):
            raise InvalidEventError("expected_last_event_id must be a non-negative integer")
        previous = 0
        now = store.clock()
        version = store.writer_version
        filled: list[Event] = []
        event_ids: list[int] = []
        push = filled.append
        push_id = event_ids.append
        replace = msgspec.structs.replace
        known = _KNOWN_TYPES
        all_known = True
        for event in events:
            event_type = type(event)
            if event_type not in known:
                if not isinstance(event, EventBase):
                    raise InvalidEventError(
                        f"item #{len(filled)} of the batch is a {event_type.__name__},"
                        " not an event",
                        location=Location(instance_id=instance_id, execution_id=execution_id),
                    )
                all_known = False  # UnknownEvent, or a subclass: checked one by one
            event_id = event.event_id
            if type(event_id) is not int or event_id <= previous:
                raise self._order_error(instance_id, execution_id, len(filled), event_id, previous)
            previous = event_id
            event_instance = event.instance_id
            event_execution = event.execution_id
            # Ordered for the common cases: identity left to the store (filled
            # here), or given and right.
            if event_instance == instance_id and event_execution == execution_id:
                if event_type is not UnknownEvent and (
                    event.timestamp_ms == 0 or event.duroxide_version == ""
                ):
                    event = replace(
                        event,
                        timestamp_ms=event.timestamp_ms or now,
                        duroxide_version=event.duroxide_version or version,
                    )
            elif (event_instance != "" and event_instance != instance_id) or (
                event_execution != 0 and event_execution != execution_id
            ):
                raise self._identity_error(instance_id, execution_id, event)
            elif event_type is UnknownEvent:
                raise InvalidEventError(
                    f"event {event_id} of unknown type must carry its instance and execution",
                    location=Location(instance_id=instance_id, execution_id=execution_id),
                )
            else:
                event = replace(
                    event,
                    instance_id=instance_id,
                    execution_id=execution_id,
                    timestamp_ms=event.timestamp_ms or now,
                    duroxide_version=event.duroxide_version or version,
                )
            push(event)
            push_id(event_id)
        codec = store.codec
        try:
            encoded = codec.encode_many(filled, all_known=all_known)
            codec.validate_encoded(filled, encoded, all_known=all_known)
        except (
            DecodeError,
            TypeError,
            ValueError,
            NotImplementedError,
            OverflowError,
            RecursionError,
            msgspec.EncodeError,
        ) as exc:
            raise InvalidEventError(
                f"invalid event: {exc}",
                location=Location(instance_id=instance_id, execution_id=execution_id),
            ) from None
        return filled, NewEvents(
            instance_id,
            execution_id,
            event_ids,
            list(map(_EVENT_TYPE, filled)),
            encoded,
        )

    @staticmethod
    def _order_error(
        instance_id: str, execution_id: int, index: int, event_id: object, previous: int
    ) -> EventStoreError:
        where = Location(instance_id=instance_id, execution_id=execution_id)
        if type(event_id) is not int:
            return InvalidEventError(
                f"item #{index} has event_id {event_id!r}, not an integer", location=where
            )
        return EventOrderError(
            f"event ids must increase from 1: item #{index} has event_id {event_id}"
            f" after {previous}",
            location=where,
        )

    @staticmethod
    def _identity_error(instance_id: str, execution_id: int, event: Event) -> EventStoreError:
        where = Location(instance_id=instance_id, execution_id=execution_id)
        if event.instance_id != instance_id and event.instance_id != "":
            return IdentityMismatchError(
                f"event {event.event_id} belongs to instance {event.instance_id!r}",
                location=where,
            )
        return IdentityMismatchError(
            f"event {event.event_id} belongs to execution {event.execution_id!r}",
            location=where,
        )

    def append(
        self,
        instance_id: str,
        execution_id: int,
        events: Iterable[Event],
        expected_last_event_id: int | None,
        committed_later: list[tuple[list[Event], float]] | None = None,
    ) -> AppendResult:
        store = self.store
        started = time.perf_counter()
        batch = list(events)
        filled, new = self.prepare(instance_id, execution_id, batch, expected_last_event_id)
        with store.backend.writing() as writer:
            # The last id is read under the write lock the transaction holds,
            # so the checks below and the insert see the same history.
            last = writer.last_event_id(instance_id, execution_id)
            refused_or_retried = self._check_against_stored(
                writer, last, instance_id, execution_id, batch, filled, expected_last_event_id
            )
            if refused_or_retried is not None:
                return refused_or_retried
            writer.insert(new)
        observer = store.observer
        if observer is not None:
            seconds = time.perf_counter() - started
            if committed_later is None:
                observer.appended(filled, seconds)
            else:  # inside transaction(): told only once the transaction commits
                committed_later.append((filled, seconds))
        if not store._catalog_recorded:  # once per store: no per-event cost
            store._record_catalog()
        return AppendResult(filled, filled[-1].event_id, True)

    def _check_against_stored(
        self,
        writer: Writer,
        last: int,
        instance_id: str,
        execution_id: int,
        batch: list[Event],
        filled: list[Event],
        expected_last_event_id: int | None,
    ) -> AppendResult | None:
        """None when the batch goes in after the stored `last` event id; else
        the result of an identical retry (nothing written), or the error the
        append contract names."""
        # The common case in one expression, before anything is built for
        # the others (an empty batch, a retry, a refusal).
        if (
            filled
            and filled[0].event_id > last
            and (expected_last_event_id is None or expected_last_event_id == last)
            and (last or type(filled[0]) is ev.OrchestrationStarted)
        ):
            return None
        where = Location(instance_id=instance_id, execution_id=execution_id)
        if filled and filled[0].event_id <= last:
            first_id = filled[0].event_id
            stored = writer.rows_between(instance_id, execution_id, first_id, filled[-1].event_id)
            if self._is_stored_retry(batch, stored, instance_id, execution_id):
                return AppendResult(
                    [self.store._decode(r, instance_id, execution_id) for r in stored],
                    last,
                    False,
                )
            if not stored:
                raise EventOrderError(
                    f"event ids must follow the last stored id {last}: the batch starts"
                    f" at {first_id}",
                    location=where,
                )
            raise ConcurrencyError(
                f"events {first_id}..{filled[-1].event_id} overlap the stored history"
                f" (last stored event {last}) with other content",
                location=where,
                expected=expected_last_event_id,
                actual=last,
            )
        if expected_last_event_id is not None and expected_last_event_id != last:
            raise ConcurrencyError(
                f"expected last event {expected_last_event_id}, stored last is {last}",
                location=where,
                expected=expected_last_event_id,
                actual=last,
            )
        if not filled:
            return AppendResult([], last, False)
        if last == 0 and type(filled[0]) is not ev.OrchestrationStarted:
            raise MissingStartError(
                f"a new execution must start with OrchestrationStarted, not {filled[0].event_type}",
                location=where,
            )
        return None

    def _is_stored_retry(
        self, batch: list[Event], stored: list[StoredRow], instance_id: str, execution_id: int
    ) -> bool:
        """True when every event of the batch is stored, with identical content.

        Fields the store fills (instance, execution, timestamp, version) match
        anything when the retried event leaves them unset.
        """
        if len(stored) != len(batch):
            return False
        for event, row in zip(batch, stored, strict=True):
            if row.event_id != event.event_id:
                return False
            try:
                kept = self.store._decode(row, instance_id, execution_id)
            except DecodeError:
                return False
            if type(kept) is not type(event):
                return False
            if type(event) is UnknownEvent:
                if event.raw != kept.raw:  # type: ignore[union-attr]
                    return False
                continue
            unset = {
                name: getattr(kept, name) for name in _FILLABLE if getattr(event, name) in ("", 0)
            }
            if (msgspec.structs.replace(event, **unset) if unset else event) != kept:
                return False
        return True


class Transaction:
    """An open transaction: appends and the embedding runtime's own SQL, as one."""

    def __init__(self, store: HistoryStore, connection: Any) -> None:
        self._store = store
        self.connection = connection
        """The backend's connection (sqlite3.Connection / psycopg.Connection)."""
        self.appended: list[tuple[list[Event], float]] = []
        """What this transaction appended, reported to the observer on commit."""

    def append(
        self,
        instance_id: str,
        execution_id: int,
        events: Iterable[Event],
        *,
        expected_last_event_id: int | None = None,
    ) -> AppendResult:
        return self._store._appender.append(
            instance_id, execution_id, events, expected_last_event_id, self.appended
        )


class HistoryStore:
    """Orchestration histories: append-only, optimistic, idempotent, any generation."""

    def __init__(
        self,
        backend: Backend,
        *,
        codec: Codec | None = None,
        clock: Callable[[], int] = _now_ms,
        writer_version: str = DEFAULT_WRITER_VERSION,
        observer: StoreObserver | None = None,
    ) -> None:
        if not _SEMVER.match(writer_version):
            raise ValueError(f"writer_version must be a semver string, not {writer_version!r}")
        self.backend = backend
        self.codec = codec or DEFAULT_CODEC
        self.clock = clock
        """Milliseconds since the epoch; stamps events appended without a timestamp."""
        self.writer_version = writer_version
        self.observer = observer
        self._appender = _Appender(self)
        self.schema_listeners: list[Callable[[Any], None]] = []
        """Told (with an eventstore.evolution.schema.SchemaEvolution) when this store first
        records the catalog it writes with; see `on_schema_evolution`."""
        self._catalog_recorded = False

    def on_schema_evolution(self, listener: Callable[[Any], None]) -> None:
        """Subscribe to schema evolution: on the first append that records a new
        catalog in `eventstore_schema_versions`, `listener` gets a
        `eventstore.evolution.schema.SchemaEvolution` (version, hash, previous catalog,
        classification, changes)."""
        self.schema_listeners.append(listener)

    def _record_catalog(self) -> None:
        from ..errors import StoreError
        from ..evolution.schema import record_catalog  # not on the import path of plain reads

        try:
            record_catalog(self)
        except StoreError:
            return  # retried on the next append; the append itself is stored
        self._catalog_recorded = True

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HistoryStore {self.backend.description}>"

    @property
    def readonly(self) -> bool:
        return self.backend.readonly

    @property
    def stable_positions(self) -> bool:
        """Whether feed positions survive maintenance such as VACUUM.

        True on tables eventstore created. On a table duroxide created,
        positions are SQLite rowids, which VACUUM may renumber: resume with
        `read_all(after=record)` to have that detected.
        """
        return self.backend.stable_positions

    # -- writing -------------------------------------------------------------

    def append(
        self,
        instance_id: str,
        execution_id: int,
        events: Iterable[Event],
        *,
        expected_last_event_id: int | None = None,
    ) -> AppendResult:
        """Append a batch to one execution, atomically.

        `expected_last_event_id` (0 for a new execution) must equal the last
        stored id, else ConcurrencyError. A batch already stored whole with
        identical content succeeds without writing (the retry of a commit
        whose acknowledgement was lost). Events with timestamp_ms == 0 are
        stamped with the store's clock; instance, execution and a missing
        duroxide_version are filled in.
        """
        return self._appender.append(instance_id, execution_id, events, expected_last_event_id)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction in which appends and the runtime's own SQL commit as one.

        The store's observer (metrics) hears of the appends only after the
        commit: a rolled-back append was never stored.
        """
        with self.backend.transaction() as connection:
            tx = Transaction(self, connection)
            yield tx
        if self.observer is not None:
            for events, seconds in tx.appended:
                self.observer.appended(events, seconds)

    # -- reading -------------------------------------------------------------

    def _decode(
        self, row: tuple[int, str, str | bytes, int], instance_id: str, execution_id: int
    ) -> Event:
        event_id, event_type, data, position = row
        try:
            event = self.codec.decode(data, instance_id=instance_id, execution_id=execution_id)
        except DecodeError as exc:
            raise self._row_error(
                exc.message, instance_id, execution_id, event_id, position
            ) from None
        problem = reconcile_row(event, event_id, event_type, instance_id, execution_id)
        if problem is not None:
            raise self._row_error(
                problem, instance_id, execution_id, event_id, position, mismatch=True
            )
        return event

    def decode_raw(self, row: RawRow) -> Decoded:
        """Decode one feed row with the store's checks, saying its generation.

        Raises DecodeError naming the row (instance, execution, event id,
        position) when it does not decode or disagrees with its columns.
        """
        try:
            decoded = self.codec.decode_detailed(
                row.event_data, instance_id=row.instance_id, execution_id=row.execution_id
            )
        except DecodeError as exc:
            raise self._row_error(
                exc.message, row.instance_id, row.execution_id, row.event_id, row.position
            ) from None
        problem = reconcile_row(
            decoded.event, row.event_id, row.event_type, row.instance_id, row.execution_id
        )
        if problem is not None:
            raise self._row_error(
                problem,
                row.instance_id,
                row.execution_id,
                row.event_id,
                row.position,
                mismatch=True,
            )
        return decoded

    def _row_error(
        self,
        message: str,
        instance_id: str,
        execution_id: int,
        event_id: int,
        position: int | None,
        *,
        mismatch: bool = False,
    ) -> DecodeError:
        location = row_location(instance_id, execution_id, event_id, position)
        if self.observer is not None:
            self.observer.decode_failed(location)
        return (RowMismatchError if mismatch else DecodeError)(message, location=location)

    def read(self, instance_id: str, execution_id: int | None = None) -> list[Event]:
        """The events of one execution (the latest by default), in event-id order."""
        if execution_id is None:
            execution_id = self.backend.latest_execution(instance_id)
            if execution_id is None:
                return []
        backend, codec = self.backend, self.codec
        rows: list[ExecutionRow] = []
        # The execution in one piece where the backend can pack it (SQLite),
        # else row by row; both decode and check every row the same way.
        packed = backend.execution_packed(instance_id, execution_id)
        try:
            if packed is not None:
                events = codec.decode_packed(*packed, instance_id, execution_id)
                if events is not None:
                    return events
                packed = None  # a row holds a newline: cannot be split exactly
            rows = backend.execution_rows(instance_id, execution_id)
            return codec.decode_rows(rows, instance_id, execution_id)
        except RowDecodeError as exc:
            event_id = packed.event_ids[exc.index] if packed is not None else rows[exc.index][0]
            position = self.backend.position_of(instance_id, execution_id, event_id)
            raise self._row_error(
                exc.message, instance_id, execution_id, event_id, position, mismatch=exc.mismatch
            ) from None

    def last_event_id(self, instance_id: str, execution_id: int | None = None) -> int:
        """The last stored event id of an execution (the latest by default); 0 if none.

        What a runtime passes as `expected_last_event_id` after a restart,
        without reading the history.
        """
        if execution_id is None:
            execution_id = self.backend.latest_execution(instance_id)
            if execution_id is None:
                return 0
        return self.backend.last_event_id(instance_id, execution_id)

    def executions(self, instance_id: str) -> list[int]:
        return self.backend.executions(instance_id)

    def instances(self) -> list[str]:
        return self.backend.instances()

    def count(self) -> int:
        return self.backend.count()

    def _feed_pages(self, after: int, limit: int | None, page: int) -> Iterator[Sequence[FeedRow]]:
        remaining = limit
        while remaining is None or remaining > 0:
            size = page if remaining is None else min(page, remaining)
            rows = self.backend.feed(after, size)
            if rows:
                yield rows
            if len(rows) < size:
                return
            after = rows[-1][0]
            if remaining is not None:
                remaining -= len(rows)

    def read_all_raw(
        self, after: int = 0, limit: int | None = None, *, page: int = 1000
    ) -> Iterator[RawRow]:
        """The global feed as stored rows, in commit order (nothing decoded)."""
        make = RawRow._make
        for rows in self._feed_pages(after, limit, page):
            yield from map(make, rows)

    def read_all(
        self, after: int | FeedRecord = 0, limit: int | None = None
    ) -> Iterator[FeedRecord]:
        """The global feed: every event in commit order, from after `after`.

        Pass the last FeedRecord you processed (rather than its position) to
        have the store check that the position still names that event; if
        positions were renumbered (VACUUM on a duroxide-created table), this
        raises PositionsRenumberedError instead of silently skipping or
        repeating events.
        """
        if isinstance(after, FeedRecord):
            key = self.backend.key_at(after.position)
            if key != (after.instance_id, after.execution_id, after.event.event_id):
                raise PositionsRenumberedError(
                    f"position {after.position} no longer holds event {after.event.event_id} "
                    f"of {after.instance_id!r} execution {after.execution_id}; "
                    "re-read the feed from the start",
                )
            after = after.position
        decode = self._decode
        for rows in self._feed_pages(after, limit, 1000):
            for position, instance_id, execution_id, event_id, event_type, data, _ in rows:
                event = decode((event_id, event_type, data, position), instance_id, execution_id)
                yield FeedRecord(position, instance_id, execution_id, event)

    def scan(self, batch: int = 2000) -> Iterator[list[RawRow]]:
        """Every stored row, by instance, execution and event id, in pages."""
        return self.backend.scan(batch)

    def summaries(self) -> Iterator[InstanceSummary]:
        """One line per instance: name, status, executions, events."""
        for instance_id, executions, latest, events in self.backend.overview():
            first, last = self.backend.edge_rows(instance_id, latest)
            name = version = None
            if first is not None and first[1] in ("OrchestrationStarted", UNRECORDED_TYPE):
                with contextlib.suppress(DecodeError):
                    started = self._decode(first, instance_id, latest)
                    if isinstance(started, ev.OrchestrationStarted):
                        name, version = started.name, started.version
            status = ExecutionStatus.RUNNING
            if last is not None:
                last_type = last[1]
                if last_type == UNRECORDED_TYPE:  # duroxide's PostgreSQL rows
                    with contextlib.suppress(DecodeError):
                        last_type = self._decode(last, instance_id, latest).event_type
                status = _STATUS_BY_TERMINAL.get(last_type, ExecutionStatus.RUNNING)
            yield InstanceSummary(instance_id, name, version, status, executions, latest, events)

    # -- whole rows (export / import) -----------------------------------------

    def import_rows(self, rows: Iterable[dict[str, Any]]) -> ImportReport:
        """Insert whole rows verbatim (any generation), in one transaction.

        Every row must decode and agree with its columns. A row whose key is
        already stored is skipped when identical and refused otherwise
        (ConflictError); on any error nothing is written.
        """
        report = ImportReport()
        with self.backend.writing() as writer:
            for line, row in enumerate(rows, start=1):
                insert = self._checked_import_row(row, line)
                existing = writer.insert_or_compare(insert)
                if existing is None:
                    report.inserted += 1
                elif existing == insert.event_data:
                    report.skipped_identical += 1
                else:
                    raise ConflictError(
                        "a different event is already stored under this key",
                        location=Location(
                            instance_id=insert.instance_id,
                            execution_id=insert.execution_id,
                            event_id=insert.event_id,
                            line=line,
                        ),
                    )
        return report

    def _checked_import_row(self, row: dict[str, Any], line: int) -> InsertRow:
        try:
            insert = InsertRow(
                row["instance_id"],
                row["execution_id"],
                row["event_id"],
                row["event_type"],
                row["event_data"],
                row.get("created_at"),
            )
        except (KeyError, TypeError) as exc:
            raise DecodeError(
                f"not a history row: missing {exc}", location=Location(line=line)
            ) from None
        if not (
            isinstance(insert.instance_id, str)
            and type(insert.execution_id) is int
            and type(insert.event_id) is int
            and isinstance(insert.event_type, str)
            and isinstance(insert.event_data, str)
            and (insert.created_at is None or isinstance(insert.created_at, str))
        ):
            raise DecodeError(
                "a history row has a column of the wrong type", location=Location(line=line)
            )
        stored = StoredRow(insert.event_id, insert.event_type, insert.event_data, 0)
        try:
            self._decode(stored, insert.instance_id, insert.execution_id)
        except DecodeError as exc:
            raise type(exc)(  # the same kind of error, located by its line
                exc.message,
                location=Location(
                    instance_id=insert.instance_id,
                    execution_id=insert.execution_id,
                    event_id=insert.event_id,
                    line=line,
                ),
            ) from None
        return insert

    def export_rows(
        self, *, quarantine: Callable[[dict[str, Any], DecodeError], None] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every row, whole and verbatim, in commit order (what import_rows takes).

        Without `quarantine` rows are copied as stored, decodable or not (a
        backup never drops data). With it, each row is decoded first and a row
        that does not decode, or disagrees with its columns, is handed to
        `quarantine(row, error)` instead of being yielded.
        """
        for position, instance_id, execution_id, event_id, event_type, data, created_at in (
            row for rows in self._feed_pages(0, None, 1000) for row in rows
        ):
            row = {
                "instance_id": instance_id,
                "execution_id": execution_id,
                "event_id": event_id,
                "event_type": event_type,
                "event_data": data.decode("utf-8", "replace") if isinstance(data, bytes) else data,
                "created_at": created_at,
            }
            if quarantine is not None:
                try:
                    self._decode((event_id, event_type, data, position), instance_id, execution_id)
                except DecodeError as exc:
                    quarantine(row, exc)
                    continue
            yield row


# --------------------------------------------------------------------------
# Opening a store
# --------------------------------------------------------------------------


def _sqlite_path(target: str) -> str:
    if target == ":memory:":
        return target
    if target.startswith("sqlite:"):
        # SQLAlchemy's convention: sqlite:///relative, sqlite:////absolute.
        rest = target[len("sqlite:") :]
        if rest in ("", "//", "///", "///:memory:", "//:memory:"):
            return ":memory:"
        if not rest.startswith("///"):
            raise TargetError(
                "SQLite URLs are sqlite:///relative/path or sqlite:////absolute/path,"
                f" not {target!r}"
            )
        return rest[3:]
    return target


def open(  # noqa: A001 - the natural name, as sqlite3.connect / shelve.open
    target: str,
    *,
    readonly: bool = False,
    codec: Codec | None = None,
    clock: Callable[[], int] = _now_ms,
    writer_version: str = DEFAULT_WRITER_VERSION,
    observer: StoreObserver | None = None,
    **backend_options: Any,
) -> HistoryStore:
    """Open (creating the history table if absent) a store.

    `target` is a file path, `sqlite:///relative/path`, `sqlite:////absolute/path`,
    `:memory:`, or a `postgresql://` URL (the `postgres` extra). Backend options:
    SQLite takes `busy_timeout_ms` (5000) and `synchronous` ("normal", see
    eventstore.backends.sqlite); PostgreSQL takes `schema` ("public"), `pool_min_size`,
    `pool_max_size`, `lock_timeout_ms` and `connect_timeout` (see
    proposals/postgres-backend.md). An unknown option is a TargetError.
    """
    if not isinstance(target, str) or not target:
        raise TargetError("a store target must be a non-empty string")
    backend: Backend
    if target.startswith(("postgresql://", "postgres://")):
        from ..backends.postgres import PostgresBackend  # optional dependency

        backend = PostgresBackend(target, readonly=readonly, **backend_options)
    else:
        from ..backends.sqlite import SQLiteBackend

        try:
            backend = SQLiteBackend(_sqlite_path(target), readonly=readonly, **backend_options)
        except TypeError as exc:
            raise TargetError(f"unknown option for a SQLite store: {exc}") from None
    return HistoryStore(
        backend, codec=codec, clock=clock, writer_version=writer_version, observer=observer
    )
