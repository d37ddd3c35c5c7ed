"""The `eventsourcing` library (9.x) as the Python peer, doing what eventstore does.

eventstore appends typed events (it encodes and checks them) and reads typed
events back. The peer's equivalent is its own typed path: domain event objects
through its Mapper (topic, JSON transcoder) into its SQLite recorder, and
stored events back through the Mapper into domain event objects. The same
histories are mirrored as eventsourcing domain events with the same payload
fields; building them is setup, as building eventstore's events is.

Its recorder fed pre-serialized StoredEvent objects is reported too
(informative): the peer's storage alone, without its serialization.

Importing this module needs eventsourcing (the `bench` extra).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from eventstore import events as ev

__all__ = [
    "SQLiteApplicationRecorder",
    "StoredEvent",
    "datastore",
    "mapper",
    "mirrored",
    "originator",
]


@dataclass(frozen=True)
class OrchestrationStarted(DomainEvent):
    name: str
    version: str
    input: str
    duroxide_version: str


@dataclass(frozen=True)
class ActivityScheduled(DomainEvent):
    name: str
    input: str
    duroxide_version: str


@dataclass(frozen=True)
class ActivityCompleted(DomainEvent):
    source_event_id: int
    result: str
    duroxide_version: str


@dataclass(frozen=True)
class OrchestrationCompleted(DomainEvent):
    output: str
    duroxide_version: str


_PAYLOAD: dict[type[Any], tuple[type[DomainEvent], tuple[str, ...]]] = {
    ev.OrchestrationStarted: (OrchestrationStarted, ("name", "version", "input")),
    ev.ActivityScheduled: (ActivityScheduled, ("name", "input")),
    ev.ActivityCompleted: (ActivityCompleted, ("source_event_id", "result")),
    ev.OrchestrationCompleted: (OrchestrationCompleted, ("output",)),
}


def originator(instance_id: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, instance_id)


def mirrored(event: ev.Event, instance_id: str, timestamp_ms: int) -> DomainEvent:
    """The eventsourcing domain event carrying the same payload as `event`."""
    cls, fields = _PAYLOAD[type(event)]
    return cls(  # type: ignore[call-arg]
        originator_id=originator(instance_id),
        originator_version=event.event_id,
        timestamp=datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC),
        duroxide_version="0.1.32",
        **{name: getattr(event, name) for name in fields},
    )


def mapper() -> Mapper[uuid.UUID]:
    """The Mapper an eventsourcing application builds by default (JSON, with
    transcodings for its timestamps and ids)."""
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    return Mapper(transcoder=transcoder)


def datastore(path: str) -> SQLiteDatastore:
    """eventsourcing's SQLiteDatastore with the pragmas eventstore and the raw
    baselines use (WAL, synchronous=NORMAL): left at SQLite's default FULL it
    would sync every commit to disk and lose by that alone."""
    store = SQLiteDatastore(path)
    pool = store.pool
    create = pool._create_connection

    def create_normal() -> Any:
        connection = create()
        connection._sqlite_conn.execute("PRAGMA synchronous=NORMAL")
        return connection

    pool._create_connection = create_normal  # type: ignore[method-assign]
    return store
