"""HistoryStore: the backend-neutral store, its reads and the feed."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from .. import events as ev
from ..codec import (
    DEFAULT_CODEC,
    UNRECORDED_TYPE,
    Codec,
    Decoded,
    RowDecodeError,
    check_row,
)
from ..errors import (
    DecodeError,
    EventStoreError,
    Location,
    RowMismatchError,
    StoreError,
)
from ..events import Event
from . import feed, transfer
from .append import _Appender
from .catalog_api import CatalogMethods
from .evolution import StoreEvolution
from .feed_api import FeedHeadMethods
from .grouping import GroupedAppender
from .lifecycle_api import LifecycleMethods
from .protocol import (
    Destroyable,
    EvolutionBackend,
    ExecutionRow,
    GroupCommitting,
    HistoryBackend,
    HoldsBackTheFeed,
    RawRow,
    Subscribable,
)
from .results import (
    _STATUS_BY_TERMINAL,
    DEFAULT_WRITER_VERSION,
    AppendResult,
    ExecutionStatus,
    FeedRecord,
    ImportReport,
    InstanceSummary,
    PlainFeedPage,
    StoreObserver,
    _now_ms,
    row_location,
)
from .window import DualWrite

_PACK_FROM_EVENTS: Final = 12
"""Executions this long or longer read faster in one piece (see `read`)."""

_SEMVER: Final = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$")


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


class HistoryStore(CatalogMethods, FeedHeadMethods, LifecycleMethods):
    """Orchestration histories: append-only, optimistic, idempotent, any generation."""

    def __init__(
        self,
        backend: HistoryBackend,
        *,
        codec: Codec | None = None,
        clock: Callable[[], int] = _now_ms,
        writer_version: str = DEFAULT_WRITER_VERSION,
        observer: StoreObserver | None = None,
        catalog_recorder: Callable[[HistoryStore], object] | None = None,
    ) -> None:
        if not isinstance(writer_version, str) or not _SEMVER.match(writer_version):
            raise ValueError(f"writer_version must be a semver string, not {writer_version!r}")
        if not isinstance(backend, HistoryBackend):
            raise TypeError(f"{type(backend).__name__} is not a HistoryBackend")
        self.backend = backend
        """The backend: for the store's own modules only (everything else goes
        through the store's methods and `evolution`)."""
        self._evolution = (
            StoreEvolution(backend, self._refresh_catalog)
            if isinstance(backend, EvolutionBackend)
            else None
        )
        self._init_catalog()
        self._waiter = backend if isinstance(backend, Subscribable) else None
        self._init_lifecycle()
        self.catalog_recorder = catalog_recorder
        """Called (with the store) after the first append, to record the catalog the
        store writes with; `eventstore.open` installs eventstore.evolution's."""
        self.codec = codec or DEFAULT_CODEC
        self.clock = clock
        """Milliseconds since the epoch; stamps events appended without a timestamp."""
        self.writer_version = writer_version
        self.observer = observer
        self._appender = (
            GroupedAppender(self, backend)
            if isinstance(backend, GroupCommitting) and backend.group_commit
            else _Appender(self)
        )
        self.schema_listeners: list[Callable[[Any], None]] = []
        """Told (with an eventstore.evolution.schema.SchemaEvolution) when this store first
        records the catalog it writes with; see `on_schema_evolution`."""
        self._catalog_recorded = False
        self.write_generation = "V1"
        """The generation this store writes: V1, or V0b while a dual-write
        window is open (`eventstore.store.window`; decided at open)."""
        self._dual_write: DualWrite | None = None
        self._mean_read = float(_PACK_FROM_EVENTS)
        """Events per execution over the last reads, a running mean (1/8 per
        read): `read` packs executions when it is at least _PACK_FROM_EVENTS."""

    def on_schema_evolution(self, listener: Callable[[Any], None]) -> None:
        """Subscribe to schema evolution: on the first append that records a new
        catalog in `eventstore_schema_versions`, `listener` gets a
        `eventstore.evolution.schema.SchemaEvolution` (version, hash, previous catalog,
        classification, changes)."""
        self.schema_listeners.append(listener)

    def _record_catalog(self) -> None:
        # The store records the catalog through the recorder it was given:
        # the evolution layer knows catalogs, the store only when to ask.
        if self.catalog_recorder is None:
            self._catalog_recorded = True
            return
        try:
            self.catalog_recorder(self)
        except StoreError:
            return  # retried on the next append; the append itself is stored
        self._catalog_recorded = True

    @property
    def evolution(self) -> StoreEvolution:
        """The store's schema-evolution records (catalogs, runs, log, archive)."""
        if self._evolution is None:
            raise StoreError(f"{self.description} keeps no schema-evolution records")
        return self._evolution

    @property
    def description(self) -> str:
        """Where the store is, safe to print (never a password)."""
        return self.backend.description

    # -- subscriptions ---------------------------------------------------------

    @property
    def can_wait_for_events(self) -> bool:
        """True when `wait_for_events` waits for commits without polling (PostgreSQL)."""
        return self._waiter is not None

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """Wait until the feed has an event after position `after`, at most `timeout` s.

        True as soon as one is committed, False when `timeout` passed without
        one. Only where `can_wait_for_events` (else StoreError: poll `read_all`).
        """
        if self._waiter is None:
            raise StoreError(f"{self.description} cannot wait for events: poll read_all")
        return self._waiter.wait_for_events(after, timeout)

    def feed_held_back(self) -> tuple[int, float | None]:
        """Committed events the feed does not show yet because a transaction
        that began before them is still open (PostgreSQL; see
        proposals/postgres-backend.md): how many, and the age in seconds of
        the oldest (None when there are none). (0, None) on SQLite, whose
        feed never holds anything back."""
        if isinstance(self.backend, HoldsBackTheFeed):
            return self.backend.held_back()
        return 0, None

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        self.backend.close()

    def destroy(self) -> None:
        """Drop everything this store keeps and close it: for throwaway stores (tests).

        Irreversible. The history table and eventstore's own tables go; on
        PostgreSQL the schema too when nothing else is in it (never `public`).
        """
        if not isinstance(self.backend, Destroyable):
            raise StoreError(f"{self.description} cannot be destroyed")
        self.backend.destroy()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HistoryStore {self.backend.description}>"

    def key_at(self, position: int) -> tuple[str | bytes, int, int] | None:
        """(instance, execution, event id) of the row at a feed position, or None."""
        return self.backend.key_at(position)

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
        if tx.appended and not self._catalog_recorded:  # after the commit (append.py)
            self._record_catalog()

    # -- reading -------------------------------------------------------------

    def check_row(
        self,
        instance_id: str,
        execution_id: int,
        event_id: int,
        event_type: str,
        data: bytes | str,
        position: int | None,
    ) -> Decoded:
        """The one row check (`eventstore.codec.rows.check_row`), located.

        Decodes a stored row, checks it against its columns and says its
        generation. Raises DecodeError (RowMismatchError when the columns
        disagree) naming instance, execution as stored, event id and position.
        """
        try:
            return check_row(self.codec, instance_id, execution_id, event_id, event_type, data)
        except RowDecodeError as exc:
            raise self._row_error(
                exc.message, instance_id, execution_id, event_id, position, mismatch=exc.mismatch
            ) from None

    def _decode(
        self, row: tuple[int, str, str | bytes, int], instance_id: str, execution_id: int
    ) -> Event:
        event_id, event_type, data, position = row
        return self.check_row(instance_id, execution_id, event_id, event_type, data, position).event

    def decode_raw(self, row: RawRow) -> Decoded:
        """Decode one feed row with the store's checks, saying its generation.

        Raises DecodeError naming the row (instance, execution, event id,
        position) when it does not decode or disagrees with its columns.
        """
        return self.check_row(
            row.instance_id,
            row.execution_id,
            row.event_id,
            row.event_type,
            row.event_data,
            row.position,
        )

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
        """The events of one execution (the latest by default), in event-id order.

        An execution retention moved to an archive is read from the archive
        the shard manifest names (ArchiveMissingError, naming the shard and
        the location, when that file is gone).
        """
        if execution_id is None:
            execution_id = self.backend.latest_execution(instance_id)
            if execution_id is None:
                return self.read_archived(instance_id, None)
        events = self._read_table(instance_id, execution_id)
        return events or self.read_archived(instance_id, execution_id)

    def _read_table(self, instance_id: str, execution_id: int) -> list[Event]:
        backend, codec = self.backend, self.codec
        rows: list[ExecutionRow] = []
        # The execution in one piece where the backend can pack it (SQLite)
        # and executions run long, else row by row; both decode and check
        # every row the same way (tests/test_read_routes.py), so the choice
        # is only what costs less. Packing has a fixed cost per read (the
        # aggregate query, parsing its lists, proving one line per row) that
        # pays off from about a dozen events: below that the row route takes
        # 12% fewer instructions on duroxide's own six-event executions, and
        # 18% fewer on their legacy rows. The store cannot know an execution's
        # length before reading it, so it goes by the executions it read last
        # (`_mean_read`, a running mean: one float per read, no query).
        packed = None
        if self._mean_read >= _PACK_FROM_EVENTS:
            packed = backend.execution_packed(instance_id, execution_id)
        try:
            if packed is not None:
                events = codec.decode_packed(*packed, instance_id, execution_id)
                if events is not None:
                    self._mean_read += (len(events) - self._mean_read) * 0.125
                    return events
                packed = None  # a row holds a newline: cannot be split exactly
            rows = backend.execution_rows(instance_id, execution_id)
            self._mean_read += (len(rows) - self._mean_read) * 0.125
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

    def count(self) -> int:
        return self.backend.count()

    def read_all_raw(
        self, after: int = 0, limit: int | None = None, *, page: int = 1000
    ) -> Iterator[RawRow]:
        """The global feed as stored rows, in commit order (nothing decoded)."""
        make = RawRow._make
        for rows in feed.pages(self, after, limit, page):
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
        return feed.read_all(self, after, limit)

    def plain_feed_page(self, after: int, limit: int) -> PlainFeedPage | None:
        """Up to `limit` events after `after` in one piece, where the backend
        packs the page and every row is plain V1 (`Codec.decode_feed`); None
        when the page must go row by row through the one row check."""
        return feed.plain_page(self, after, limit)

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

    def import_rows(
        self, rows: Iterable[dict[str, Any]], *, skip_corrupt: bool = False
    ) -> ImportReport:
        """Insert whole rows verbatim (any generation), in one transaction.

        Each row must meet append's identity rules, have columns both
        backends hold, decode and agree with its columns; a row that does not
        raises naming its line (ordinal) and column, or with `skip_corrupt`
        is left out and listed in `ImportReport.corrupt`. A row whose key is
        already stored is skipped when identical and refused otherwise
        (ConflictError); on any error nothing is written.
        """
        return transfer.import_rows(self, rows, skip_corrupt=skip_corrupt)

    def import_located(
        self, rows: Iterable[tuple[Location, dict[str, Any]]], *, skip_corrupt: bool = False
    ) -> ImportReport:
        """import_rows for rows that say where they came from (a file's line, a position)."""
        return transfer.import_located(self, rows, skip_corrupt=skip_corrupt)

    def export_located(self) -> Iterator[tuple[Location, dict[str, Any]]]:
        """export_rows, each row with its position and key (what import_located takes)."""
        return transfer.export_located(self)

    def export_rows(
        self,
        *,
        quarantine: Callable[[dict[str, Any], EventStoreError], None] | None = None,
        warn: Callable[[dict[str, Any], EventStoreError], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every row, whole and verbatim, in commit order (what import_rows takes).

        Without callbacks rows are copied as stored, importable or not (a
        backup never drops data; bytes that are not UTF-8 go out as
        `{"base64": ...}`, exactly as stored, see eventstore.store.transfer_rows).
        With `quarantine`, a row that import would refuse is handed to
        `quarantine(row, error)` instead of being yielded; with `warn`, it is
        reported to `warn(row, error)` and yielded all the same.
        """
        return transfer.export_rows(self, quarantine=quarantine, warn=warn)
