"""The server-side append functions: their definitions, names and creation.

Two functions, one per shape of history table, each created only on its
shape (one_flight.py's docstring says what they do and why):

* `eventstore_append_v1` on an unpartitioned table;
* `eventstore_append_sharded_v1` on a table partitioned by day shard
  (partitions.py): the same checks, with the execution's shard read and
  written. Its one more argument, `p_shard`, is the shard the store derived
  for a batch that starts its execution (`NewEvents.shard`, from
  store/shard_key.py; empty otherwise).

Each name carries a version: a change of a function's arguments or of what
it checks or writes takes a new name, never a `CREATE OR REPLACE` over the
old one. A process of an earlier version keeps calling the function it
knows, unchanged under it; both take the same locks in the same order and
make the same checks as the plain route, so processes of two versions can
append to one table side by side. A separate name per shape also means a
table converted to partitioned (`eventstore shards partition`) never has
the unpartitioned function called on it by a process of this version.

The bodies share their checks and catalog writes (the fragments below), so
a rule the two must agree on is written once.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg import sql

from .queries import TABLE

__all__ = ["FUNCTION", "SHARDED_FUNCTION", "arguments_of", "ensure_function", "function_of"]

FUNCTION: Final = "eventstore_append_v1"
"""The unpartitioned table's function (a change of signature or meaning: the next version)."""

SHARDED_FUNCTION: Final = "eventstore_append_sharded_v1"
"""The partitioned table's function (its rows carry the execution's shard)."""

_ARGUMENTS: Final = (
    "bigint, bigint, text, bigint, bigint, text, text, text, text, boolean,"
    " text, text, text, bigint, bigint, bigint, text"
)
"""The unpartitioned function's signature (its arguments' types, in order)."""

_PARAMETERS: Final = """
    table_key bigint, execution_key bigint, p_instance text, p_execution bigint,
    after bigint, wanted text, refused text, types text, datas text,
    keep_catalog boolean, c_name text, c_version text, c_status text,
    c_started bigint, c_ended bigint, c_bytes bigint, c_shard text"""

_LOCKS: Final = """
    PERFORM pg_advisory_xact_lock_shared(table_key), pg_advisory_xact_lock(execution_key);"""

# The stored last event must be the one the batch follows, of a type that
# lets it pass the rules without a walk (store/rules.py clearing_condition).
_CHECK_LAST: Final = """
    IF COALESCE(last_id, 0) <> after THEN
        RETURN 0;
    END IF;
    IF after > 0 AND (last_type = ANY(string_to_array(refused, chr(30)))
            OR (wanted IS NOT NULL
                AND NOT last_type = ANY(string_to_array(wanted, chr(30))))) THEN
        RETURN 0;
    END IF;
    n := array_length(string_to_array(types, chr(30)), 1);"""

_ROWS: Final = """
    SELECT p_instance, p_execution, after + r.n, r.t, r.d, now(){shard}
    FROM ROWS FROM (unnest(string_to_array(types, chr(30))),
        unnest(string_to_array(datas, chr(30)))) WITH ORDINALITY AS r(t, d, n);"""

_MOVE_CATALOG: Final = """
    IF keep_catalog AND after = 0 THEN
        INSERT INTO {executions} (instance_id, execution_id, name, version, status,
            started_ms, ended_ms, last_event_id, event_count, bytes, shard)
        VALUES (p_instance, p_execution, c_name, c_version, c_status, c_started, c_ended,
            n, n, c_bytes, c_shard)
        ON CONFLICT (instance_id, execution_id) DO UPDATE SET name = EXCLUDED.name,
            version = EXCLUDED.version, status = EXCLUDED.status,
            started_ms = EXCLUDED.started_ms, ended_ms = EXCLUDED.ended_ms,
            last_event_id = EXCLUDED.last_event_id, event_count = EXCLUDED.event_count,
            bytes = EXCLUDED.bytes, shard = EXCLUDED.shard;
    ELSIF keep_catalog THEN
        -- Under the execution's key no other append moves this row, and every
        -- other writer of the catalog holds the table's key exclusively.
        UPDATE {executions} SET status = c_status, ended_ms = c_ended,
            last_event_id = after + n, event_count = event_count + n, bytes = bytes + c_bytes
        WHERE instance_id = p_instance AND execution_id = p_execution;
    END IF;
    RETURN n;
END
$body$
"""

_COLUMNS: Final = "instance_id, execution_id, event_id, event_type, event_data, created_at"

_DDL: Final = (
    "CREATE OR REPLACE FUNCTION {function}("
    + _PARAMETERS
    + """
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $body$
DECLARE
    last_id bigint;
    last_type text;
    n integer;
BEGIN"""
    + _LOCKS
    + """
    -- A statement of its own: a fresh snapshot, taken with the locks held.
    SELECT h.event_id, h.event_type INTO last_id, last_type FROM {history} h
        WHERE h.instance_id = p_instance AND h.execution_id = p_execution
        ORDER BY h.event_id DESC LIMIT 1;"""
    + _CHECK_LAST
    + """
    -- A continued execution's catalog row must still end at `after` (else it
    -- lags, and the plain route recomputes it). Checked before anything is
    -- written, moved after the rows: the rows' transaction id and positions
    -- are drawn by the same INSERT, as on the plain route.
    -- Nested: a statement is planned when it first runs, and a store that
    -- keeps no catalog may have no catalog table.
    IF keep_catalog AND after > 0 THEN
        IF NOT EXISTS (SELECT 1 FROM {executions} e
                WHERE e.instance_id = p_instance AND e.execution_id = p_execution
                AND e.last_event_id = after) THEN
            RETURN 0;
        END IF;
    END IF;
    INSERT INTO {history} ("""
    + _COLUMNS
    + ")"
    + _ROWS.replace("{shard}", "")
    + _MOVE_CATALOG
)

# The partitioned table's function. Where the execution's rows are: in the
# shard its catalog row names (a continued execution), else the shard the
# store derived (a new one), or in root (imports, other programs' rows,
# legacy rows until `shards rebase`): the last-event read names those two
# partitions, as the plain route's does (queries.py last_event_in), and
# reads every partition only when it knows neither. The rows go to the
# shard of the stored last row (a continued execution: all its rows in one
# partition), else the derived one. The partition of a new execution's
# shard is made by the client before the call (partitions.py); when it is
# gone after all (dropped by another process), the INSERT fails, nothing is
# written, and the client declines to the plain route, which makes it.
_SHARDED_DDL: Final = (
    "CREATE OR REPLACE FUNCTION {function}("
    + _PARAMETERS
    + """, p_shard text
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $body$
DECLARE
    last_id bigint;
    last_type text;
    last_shard text;
    stored_shard text;
    catalog_last bigint;
    n integer;
BEGIN"""
    + _LOCKS
    + """
    -- The catalog row first (statements of their own, each a fresh
    -- snapshot taken with the locks held): it says the shard, and a new
    -- execution has none while a continued one's must end at `after` (else
    -- it lags, or the execution is not new: the plain route answers).
    IF keep_catalog THEN
        SELECT NULLIF(e.shard, ''), e.last_event_id INTO stored_shard, catalog_last
            FROM {executions} e
            WHERE e.instance_id = p_instance AND e.execution_id = p_execution;
        IF COALESCE(catalog_last, 0) <> after THEN
            RETURN 0;
        END IF;
    END IF;
    stored_shard := COALESCE(stored_shard, NULLIF(p_shard, ''));
    IF stored_shard IS NULL THEN
        SELECT h.event_id, h.event_type, h.eventstore_shard INTO last_id, last_type, last_shard
            FROM {history} h
            WHERE h.instance_id = p_instance AND h.execution_id = p_execution
            ORDER BY h.event_id DESC LIMIT 1;
    ELSE
        SELECT h.event_id, h.event_type, h.eventstore_shard INTO last_id, last_type, last_shard
            FROM {history} h
            WHERE h.instance_id = p_instance AND h.execution_id = p_execution
            AND h.eventstore_shard IN (stored_shard, 'root')
            ORDER BY h.event_id DESC LIMIT 1;
    END IF;"""
    + _CHECK_LAST
    + """
    INSERT INTO {history} ("""
    + _COLUMNS
    + ", eventstore_shard)"
    + _ROWS.replace("{shard}", ", COALESCE(last_shard, stored_shard, 'root')")
    + _MOVE_CATALOG
)


def arguments_of(partitioned: bool) -> str:
    """The function's arguments' types, in order, for a table of that shape."""
    return _ARGUMENTS + (", text" if partitioned else "")


def function_of(schema: str, partitioned: bool = False) -> sql.Identifier:
    """The qualified name in `schema` of the function for a table of that shape."""
    return sql.Identifier(schema, SHARDED_FUNCTION if partitioned else FUNCTION)


def ensure_function(
    con: psycopg.Connection[Any],
    schema: str,
    table_key: int,
    *,
    usable: bool,
    partitioned: bool = False,
) -> bool:
    """Whether appends can go in one flight on this table: its shape's
    function is there, or was created now (under the table's key held
    exclusively, so concurrent first opens do not race on the system
    catalog). `usable`: the store is writable and the table one of ours
    with transaction ids. Without the privilege to create it, or on a hot
    standby, appends take the plain route."""
    if not usable:
        return False
    exists = b"SELECT to_regprocedure(%s) IS NOT NULL"
    function = function_of(schema, partitioned)
    signature = function.as_string(None) + f"({arguments_of(partitioned)})"
    row = con.execute(exists, (signature,)).fetchone()
    if row is not None and row[0]:
        return True
    try:
        with con.transaction():
            if con.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
                return False
            con.execute("SELECT pg_advisory_xact_lock(%s)", (table_key,))
            con.execute(
                sql.SQL(_SHARDED_DDL if partitioned else _DDL).format(
                    function=function,
                    history=sql.Identifier(schema, TABLE),
                    executions=sql.Identifier(schema, "eventstore_executions"),
                )
            )
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True
