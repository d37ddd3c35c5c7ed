"""The append contract, shared by HistoryStore.append and Transaction.append."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Final

import msgspec

from .. import events as ev
from .._words import a
from ..codec import UNRECORDED_TYPE, RowDecodeError, check_row
from ..errors import (
    ConcurrencyError,
    DecodeError,
    EventOrderError,
    EventStoreError,
    HistoryRuleError,
    IdentityMismatchError,
    InvalidEventError,
    Location,
    MissingStartError,
)
from ..events import Event, EventBase, UnknownEvent
from . import catalog, one_flight
from .identity import check_identity
from .protocol import (
    HistoryWriter,
    NewEvents,
    StoredRow,
)
from .results import AppendResult
from .rules import ExecutionRules, batch_clears, stored_sources
from .shard_key import derive_shard_key

if TYPE_CHECKING:
    from .history import HistoryStore

_FILLABLE: Final = ("instance_id", "execution_id", "timestamp_ms", "duroxide_version")
_KNOWN_TYPES: Final = frozenset(ev.EVENT_TYPES.values())
_EVENT_TYPE: Final = operator.attrgetter("event_type")


class _Appender:
    """The append contract, shared by HistoryStore.append and Transaction.append."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self._one_flight = one_flight.backend_of(store)

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
        check_identity(instance_id, execution_id)  # import applies the same rules
        if expected_last_event_id is not None and (
            type(expected_last_event_id) is not int or expected_last_event_id < 0
        ):
            raise InvalidEventError("expected_last_event_id must be a non-negative integer")
        filled, event_ids, all_known = self._fill(instance_id, execution_id, events)
        encoded = self._encode(instance_id, execution_id, filled, all_known)
        if not all_known:
            self._check_unknown(instance_id, execution_id, filled)
        return filled, NewEvents(
            instance_id,
            execution_id,
            event_ids,
            list(map(_EVENT_TYPE, filled)),
            encoded,
            derive_shard_key(filled[0].timestamp_ms) if event_ids and event_ids[0] == 1 else "",
        )

    def _fill(
        self, instance_id: str, execution_id: int, events: Sequence[Event]
    ) -> tuple[list[Event], list[int], bool]:
        """Each event in order, with the identity, timestamp and writer version
        the store fills in; and whether every event is of a known type."""
        previous = 0
        now = self.store.clock()
        version = self.store.writer_version
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
                self._refuse_non_event(instance_id, execution_id, len(filled), event)
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
            else:
                if (
                    (event_instance != "" and event_instance != instance_id)
                    or (event_execution != 0 and event_execution != execution_id)
                    or event_type is UnknownEvent
                ):
                    self._refuse_foreign(instance_id, execution_id, event)
                event = replace(
                    event,
                    instance_id=instance_id,
                    execution_id=execution_id,
                    timestamp_ms=event.timestamp_ms or now,
                    duroxide_version=event.duroxide_version or version,
                )
            push(event)
            push_id(event_id)
        return filled, event_ids, all_known

    @staticmethod
    def _refuse_non_event(instance_id: str, execution_id: int, index: int, item: object) -> None:
        if not isinstance(item, EventBase):
            raise InvalidEventError(
                f"item #{index} of the batch is {a(type(item).__name__)}, not an event",
                location=Location(instance_id=instance_id, execution_id=execution_id),
            )

    def _refuse_foreign(self, instance_id: str, execution_id: int, event: Event) -> None:
        """An event whose identity is not this execution's, in full: it may leave
        it for the store to fill, but not name another, and an UnknownEvent
        (stored as its raw JSON, which the store cannot fill) must carry it."""
        if (event.instance_id != "" and event.instance_id != instance_id) or (
            event.execution_id != 0 and event.execution_id != execution_id
        ):
            raise self._identity_error(instance_id, execution_id, event)
        if type(event) is UnknownEvent:
            raise InvalidEventError(
                f"event {event.event_id} of unknown type must carry its instance and execution",
                location=Location(instance_id=instance_id, execution_id=execution_id),
            )

    def _encode(
        self, instance_id: str, execution_id: int, filled: list[Event], all_known: bool
    ) -> list[bytes]:
        codec = self.store.codec
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
        return encoded

    def _check_unknown(self, instance_id: str, execution_id: int, filled: list[Event]) -> None:
        """An UnknownEvent is stored as its raw JSON: that must pass the row
        check every reader applies (its type, id and identity agree with the
        event's), or the stored row would make read and read_all raise."""
        for event in filled:
            if type(event) is not UnknownEvent:
                continue
            try:
                check_row(
                    self.store.codec,
                    instance_id,
                    execution_id,
                    event.event_id,
                    event.event_type,
                    event.raw,
                )
            except RowDecodeError as exc:
                raise InvalidEventError(
                    f"the raw JSON of this {event.event_type} event would not read back as"
                    f" it: {exc.message}",
                    location=Location(
                        instance_id=instance_id, execution_id=execution_id, event_id=event.event_id
                    ),
                ) from None

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
        if committed_later is None and one_flight.written(
            self._one_flight, store, new, filled, expected_last_event_id
        ):
            result = AppendResult(filled, filled[-1].event_id, True)
        else:  # the plain route (and every append inside transaction())
            with store.backend.writing() as writer:
                result = self.write_prepared(writer, new, batch, filled, expected_last_event_id)
        if not result.written:
            return result  # an identical retry: nothing was written
        seconds = time.perf_counter() - started
        if committed_later is not None:
            # Inside transaction(): the observer hears of it, and the catalog
            # is recorded, once the transaction commits (HistoryStore.transaction).
            # Recording it here would take the table's write lock exclusively
            # inside a transaction that holds it shared (PostgreSQL: two such
            # transactions would deadlock).
            committed_later.append((filled, seconds))
            return result
        if store.observer is not None:
            store.observer.appended(filled, seconds)
        if not store._catalog_recorded:  # once per store: no per-event cost
            store._record_catalog()
        return result

    def write_prepared(
        self,
        writer: HistoryWriter,
        new: NewEvents,
        batch: list[Event],
        filled: list[Event],
        expected_last_event_id: int | None,
    ) -> AppendResult:
        """The body of every append's transaction: `append`'s own, a group
        commit's (on the writer the group holds) and the async route's.

        The last id is read under the write lock the transaction holds, so
        the checks and the insert see the same history, and the execution
        catalog's row moves in the same transaction. Observer and the schema
        catalog are the caller's, after the commit.
        """
        instance_id, execution_id = new.instance_id, new.execution_id
        last, last_type = writer.last_event(instance_id, execution_id, new.shard)
        refused_or_retried = self._check_against_stored(
            writer, last, instance_id, execution_id, batch, filled, expected_last_event_id
        )
        if refused_or_retried is not None:
            return refused_or_retried
        if last_type == UNRECORDED_TYPE or not batch_clears(
            new.event_ids, new.event_types, filled, last, last_type
        ):
            self._check_rules(writer, last, last_type, new, filled)
        store = self.store
        dual_write = store._dual_write
        if dual_write is None:
            writer.insert(new)
        else:  # a legacy write generation: legacy rows and their V1 shadows (store/window.py)
            new = dual_write.write(writer, new)
        if store._catalog_kept:
            # The catalog row moves in this same transaction (or savepoint, in
            # a group commit or inside transaction()): it commits with the
            # rows or not at all, so a killed append never leaves the catalog
            # disagreeing with the history. See store/catalog.py.
            catalog.advance(store, writer, new, filled, last)  # type: ignore[arg-type]
        return AppendResult(filled, filled[-1].event_id, True)

    def _check_rules(
        self,
        writer: HistoryWriter,
        last: int,
        last_type: str,
        new: NewEvents,
        filled: list[Event],
    ) -> None:
        """The history rules (`rules.ExecutionRules`, the ones verify applies),
        from what is stored: the last event and, per referenced event outside
        the batch, its row, read in this transaction (`_stored_types`)."""
        stored_type = self._stored_types(writer, new.instance_id, new.execution_id, filled, last)
        if last_type != UNRECORDED_TYPE and batch_clears(
            new.event_ids,
            new.event_types,
            filled,
            last,
            last_type,
            stored_type,
        ):
            return  # sources in earlier turns, of the right kinds: no walk needed
        rules = ExecutionRules(last_event_id=last, started=last > 0, lookup=stored_type)
        if last_type == UNRECORDED_TYPE:  # the column does not say: the event does
            last_type = stored_type(last) or ""
        if last_type in ev.TERMINAL_TYPES:
            rules.terminal = last
        for event in filled:
            problems = rules.check(event)
            if problems:
                problem = problems[0]
                error = EventOrderError if problem.kind == "gap" else HistoryRuleError
                raise error(
                    f"{problem.message}; nothing was written",
                    location=Location(
                        instance_id=new.instance_id,
                        execution_id=new.execution_id,
                        event_id=event.event_id,
                    ),
                )

    def _stored_types(
        self,
        writer: HistoryWriter,
        instance_id: str,
        execution_id: int,
        filled: list[Event],
        last: int,
    ) -> Callable[[int], str | None]:
        """The type of a stored event, by id, for the history rules.

        The stored events a batch's completions name usually lie close
        together (a turn's results name what the turns just before it
        scheduled), so one read of the rows between the first and the last
        of them answers them all when they span at most `rules.SOURCE_SPAN` ids;
        any other id is one indexed lookup of its own, as it always was.
        """

        def row_type(row: StoredRow) -> str | None:
            if row.event_type != UNRECORDED_TYPE:
                return row.event_type
            try:  # duroxide's PostgreSQL rows do not record the type
                return self.store._decode(row, instance_id, execution_id).event_type
            except DecodeError:
                return None

        first, end = stored_sources(filled, last)
        near: dict[int, str | None] = {}
        if first <= end:
            near = {
                row.event_id: row_type(row)
                for row in writer.rows_between(instance_id, execution_id, first, end)
            }

        def stored_type(event_id: int) -> str | None:
            if first <= event_id <= end:
                return near.get(event_id)
            rows = writer.rows_between(instance_id, execution_id, event_id, event_id)
            return row_type(rows[0]) if rows else None

        return stored_type

    def _check_against_stored(
        self,
        writer: HistoryWriter,
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
        dual_write = self.store._dual_write
        for event, row in zip(batch, stored, strict=True):
            if row.event_id != event.event_id:
                return False
            try:
                kept = self.store._decode(row, instance_id, execution_id)
            except DecodeError:
                return False
            if type(kept) is not type(event):
                return False
            if dual_write is not None and type(event) is not UnknownEvent:
                event = dual_write.legacy_view(event, instance_id, execution_id)
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
