"""The write generation and the dual-write window, on the store's side.

A store writes V1 unless it was told otherwise. During a rolling upgrade
(readers that know only V0b still running) it is opened with
`eventstore.open(target, write_generation="V0b")`: the generation is recorded
in the store (the backend's `WindowBackend`), so every writer agrees on it,
and each append then writes

* the history row in the V0b shape (`eventstore.codec.downcast`), which
  the old readers read, and
* the full V1 form of the same event (timestamps, versions, phase-2
  metadata) into the shadow table, keyed like the history,

in the same transaction. `eventstore cutover` later flips the generation to V1
and rewrites the window's rows from their shadow forms
(`eventstore.evolution.cutover`). The store's own reads are unchanged: they
read the history table, whatever generation its rows are in.

The generation is decided once, at open: a V1 store (the default, and every
store that never opened a window) has no `DualWrite` and its append path
pays one `is None` test per append.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, cast

import msgspec

from ..codec.downcast import LEGACY_WRITE_GENERATIONS, to_v0b
from ..errors import DecodeError, TargetError, WriteGenerationError
from ..events import Event
from .protocol import HistoryWriter, NewEvents, WindowBackend, WindowWriter

if TYPE_CHECKING:
    from .history import HistoryStore

__all__ = ["CURRENT_GENERATION", "WRITE_GENERATIONS", "DualWrite", "configure_write_generation"]

CURRENT_GENERATION: Final = "V1"
WRITE_GENERATIONS: Final = frozenset({CURRENT_GENERATION, *LEGACY_WRITE_GENERATIONS})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DualWrite:
    """How a store whose write generation is legacy writes a batch."""

    __slots__ = ("description", "generation", "store")

    def __init__(self, store: HistoryStore, generation: str) -> None:
        self.store = store
        self.generation = generation
        self.description = store.description

    def write(self, writer: HistoryWriter, new: NewEvents) -> NewEvents:
        """Insert the batch's legacy rows and their V1 shadow forms, in `writer`'s transaction.

        Durability and ordering: both inserts run inside the one write
        transaction the append already holds (BEGIN IMMEDIATE on SQLite, the
        lock under which the last event id was read), so a batch's legacy rows
        and its shadow rows commit together or not at all; a crash between
        them leaves neither. Returns the history rows as inserted (what the
        execution catalog counts). That is what lets `cutover` trust that every
        history row with a shadow row was written from exactly that V1 event,
        and a row without one predates the window. The recorded generation is
        read again under the same lock: once a cutover has flipped it (its
        own transaction, which this one serialises with), a writer still
        configured for the legacy generation is refused before it writes, so
        no legacy row lands behind the cutover's scan.
        """
        window = cast(WindowWriter, writer)  # a WindowBackend's writers are WindowWriters
        recorded = window.recorded_generation() or CURRENT_GENERATION
        if recorded != self.generation:
            raise _mismatch(self.description, self.generation, recorded)
        legacy = new._replace(event_data=[to_v0b(data) for data in new.event_data])
        writer.insert(legacy)
        window.insert_shadow(new)
        return legacy

    def legacy_view(self, event: Event, instance_id: str, execution_id: int) -> Event:
        """The event as its legacy row reads back (for the idempotent-retry check).

        An event that has no such view is returned as it is: it then differs
        from the stored row, which is the right answer for a retry check."""
        codec = self.store.codec
        try:
            return codec.decode(
                to_v0b(codec.encode(event)), instance_id=instance_id, execution_id=execution_id
            )
        except (DecodeError, TypeError, ValueError, msgspec.EncodeError, msgspec.DecodeError):
            return event


def _mismatch(description: str, configured: str, recorded: str) -> WriteGenerationError:
    if recorded == CURRENT_GENERATION:
        hint = (
            "the store was cut over to V1 (or never had a window): open it with"
            " write_generation='V1', or roll the cutover back first"
        )
    else:
        hint = (
            f"open it with write_generation={recorded!r}, or run"
            " `eventstore cutover TARGET --to V1` to end the dual-write window"
        )
    return WriteGenerationError(
        f"{description} records write generation {recorded}; this writer is configured for"
        f" {configured}: {hint}",
        configured=configured,
        recorded=recorded,
    )


def configure_write_generation(store: HistoryStore, requested: str | None) -> None:
    """Decide the store's write generation at open (see the module docstring).

    `requested` None adopts what the store records (V1 when nothing is);
    a value must agree with the record, else WriteGenerationError naming
    both. A legacy generation on a store that records none opens the window
    (records it). Read-only stores write nothing and record nothing.
    """
    if requested is not None and requested not in WRITE_GENERATIONS:
        raise TargetError(
            f"option write_generation must be one of {', '.join(sorted(WRITE_GENERATIONS))},"
            f" not {requested!r}"
        )
    backend = store.backend
    if not isinstance(backend, WindowBackend):
        if requested is not None and requested != CURRENT_GENERATION:
            raise TargetError(
                f"option write_generation={requested!r}: {store.description} keeps no"
                " dual-write window"
            )
        return
    recorded = backend.write_generation()
    if recorded is not None and recorded not in WRITE_GENERATIONS and not store.readonly:
        raise WriteGenerationError(
            f"{store.description} records write generation {recorded!r} (table"
            " eventstore_write_generation), which this version does not know: no writer is"
            f" safe; known generations: {', '.join(sorted(WRITE_GENERATIONS))}",
            configured=requested or CURRENT_GENERATION,
            recorded=recorded,
        )
    if store.readonly:
        store.write_generation = recorded or CURRENT_GENERATION
        return
    generation = recorded or CURRENT_GENERATION
    if requested is not None and requested != generation:
        if recorded is not None or requested == CURRENT_GENERATION:
            raise _mismatch(store.description, requested, generation)
        generation = _open_window(store, requested)
    store.write_generation = generation
    store._dual_write = DualWrite(store, generation) if generation != CURRENT_GENERATION else None


def _open_window(store: HistoryStore, generation: str) -> str:
    """Record a legacy write generation on a store that records none; the one recorded."""
    with store.backend.writing() as writer:
        window = cast(WindowWriter, writer)
        recorded = window.recorded_generation()  # again, under the write lock
        if recorded is None:
            window.set_write_generation(generation, _now())
            return generation
    if recorded != generation:
        raise _mismatch(store.description, generation, recorded)
    return recorded
