"""SQL functions over stored events, for sqlite-utils and `eventstore query`.

Installed as a sqlite-utils plugin (entry point group `sqlite_utils`), so
every connection sqlite-utils opens has them::

    sqlite-utils query history.db \\
        "select es_type(event_data), count(*) from history group by 1"

The functions read `event_data` of any generation (V1, V0a, V0b, V0) through
the codec's one decode, the same one `read` and `verify` use:

* `es_type(data)`: the event type, e.g. `ActivityScheduled`;
* `es_generation(data)`: `V1`, `V0a`, `V0b` or `V0`;
* `es_timestamp_ms(data)`: the event's timestamp in ms, 0 where it has none
  (legacy events never do);
* `es_v1(data)`: the event as V1 JSON (legacy events upcast), as duroxide
  writes it; `es_v1(data, instance_id, execution_id)` also fills the
  identity legacy events do not carry (pass the row's columns).

A value that is not an event (undecodable, not text, NULL) gives NULL from
every function rather than an error, so one bad row cannot end a query over
a whole store; `where es_type(event_data) is null` finds such rows.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlite_utils import hookimpl

from .codec import DEFAULT_CODEC, encode
from .codec.decoders import Decoded
from .errors import EventStoreError

__all__ = ["FUNCTIONS", "prepare_connection", "register_functions"]


@functools.lru_cache(maxsize=1024)
def _decoded(data: str | bytes) -> Decoded | None:
    # Cached: a query calling several es_* functions on one row decodes it once.
    try:
        return DEFAULT_CODEC.decode_detailed(data)
    except EventStoreError:
        return None


def _on_event(read: Callable[[Decoded], Any]) -> Callable[[Any], Any]:
    def function(data: Any) -> Any:
        if isinstance(data, memoryview):
            data = bytes(data)
        if not isinstance(data, str | bytes):
            return None
        found = _decoded(data)
        return None if found is None else read(found)

    return function


FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "es_type": _on_event(lambda d: d.event.event_type),
    "es_generation": _on_event(lambda d: str(d.generation)),
    "es_timestamp_ms": _on_event(lambda d: d.event.timestamp_ms if d.event.has_timestamp else 0),
    "es_v1": _on_event(lambda d: encode(d.event).decode("utf-8")),
}
"""The SQL functions by name; each takes one argument, an `event_data` value."""


def _v1_with_identity(data: Any, instance_id: Any, execution_id: Any) -> str | None:
    if isinstance(data, memoryview):
        data = bytes(data)
    if not isinstance(data, str | bytes) or not isinstance(instance_id, str):
        return None
    if type(execution_id) is not int:
        return None
    try:
        event = DEFAULT_CODEC.decode(data, instance_id=instance_id, execution_id=execution_id)
    except EventStoreError:
        return None
    return encode(event).decode("utf-8")


def register_functions(conn: sqlite3.Connection) -> None:
    """Add the es_* functions to a sqlite3 connection."""
    for name, function in FUNCTIONS.items():
        conn.create_function(name, 1, function, deterministic=True)
    conn.create_function("es_v1", 3, _v1_with_identity, deterministic=True)


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    """sqlite-utils' hook: called for every connection it opens."""
    register_functions(conn)
