"""Every SQL statement is parameterised (tests/reliability/README.md, Security).

Two kinds of evidence:

1. Dynamically, on PostgreSQL: a database of the test server logs every
   statement (`log_statement = 'all'`). Every kind of operation runs through
   the public API with instance ids, names and payloads carrying a hostile
   marker and a unique token; the server log must then show the token only
   where values travel as values:

   - in `DETAIL:  Parameters: $1 = ...` lines (server-side bound parameters
     of the extended protocol; the one-flight append's call among them), and
   - in the one statement sent on purpose with client-side binding: the
     opening of a write unit (`PostgresWriter._open`) sends BEGIN, the table's
     advisory lock and the append's read of the last event as one simple
     query (several statements in one send cannot use server-side
     parameters). psycopg's `ClientCursor` binds those values by quoting them
     as literals (its adapters double the quotes; this is escaping, not string
     formatting). There the token may appear only inside the exact literal
     that `ClientCursor.mogrify` produces for the value, and the statement
     must be that opening (it takes `pg_advisory_xact_lock`).

   Anywhere else (a statement text sent with the extended protocol, an error
   with its STATEMENT) the test fails.

2. Statically, on both backends: an `ast` scan of every module of the
   package that no SQL text is built from values (see `sql_building_problems`).
"""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import eventstore
from eventstore import events as ev
from eventstore.store.verify import verify
from tests.postgres_server import PostgresServer

PACKAGE = Path(eventstore.__file__).parent
MARKER = "zz'marker;--\""

# -- 1. the PostgreSQL server's statement log ----------------------------------

# log_line_prefix is the default '%m [%p] ': every entry starts with a timestamp.
_ENTRY_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_LEVEL = re.compile(r"^\S+ \S+ \S+ \[\d+\] (?P<kind>[A-Z]+):  (?P<text>.*)", re.DOTALL)


def _log_entries(text: str) -> list[tuple[str, str]]:
    """(level, message) of every log entry, continuation lines joined."""
    entries: list[str] = []
    for line in text.splitlines():
        if _ENTRY_START.match(line) or not entries:
            entries.append(line)
        else:
            entries[-1] += "\n" + line
    out = []
    for entry in entries:
        m = _LEVEL.match(entry)
        out.append((m["kind"], m["text"]) if m else ("", entry))
    return out


@pytest.fixture
def logged_database(postgres_server: PostgresServer) -> Iterator[Callable[[], str]]:
    """A callable making fresh databases whose sessions log every statement."""
    import psycopg

    def make() -> str:
        url = postgres_server.create_database()
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(postgres_server.url(), autocommit=True) as con:
            try:
                con.execute(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
                con.execute(f'ALTER DATABASE "{name}" SET log_parameter_max_length = -1')
            except psycopg.Error as exc:  # pragma: no cover - depends on the server
                pytest.skip(f"cannot enable statement logging on the test server: {exc}")
        return url

    yield make


def _drive_every_operation(source_url: str, target_url: str, token: str) -> list[str]:
    """Run every kind of operation with hostile values; returns the instance ids."""
    ids = [f"{MARKER}{token}-a", f"{MARKER}{token}-b", f"{MARKER}{token}-tx"]
    hostile = f"{MARKER}{token}"

    def started(name: str) -> ev.OrchestrationStarted:
        return ev.OrchestrationStarted(event_id=1, name=name, version=hostile, input=f'"{hostile}"')

    with eventstore.open(source_url) as store:
        store.append(ids[0], 1, [started(hostile)])
        store.append(
            ids[0], 1, [ev.ActivityScheduled(event_id=2, name=hostile, input=f'"{hostile}"')]
        )
        store.append(ids[1], 1, [started(hostile)])
        store.append(ids[1], 2, [started(hostile)])
        with store.transaction() as tx:
            tx.append(ids[2], 1, [started(hostile)])
        assert [e.event_id for e in store.read(ids[0])] == [1, 2]
        assert len(store.read(ids[1], 1)) == 1
        assert store.last_event_id(ids[0]) == 2
        assert store.last_event_id(ids[1], 2) == 1
        assert store.executions(ids[1]) == [1, 2]
        assert set(ids) <= set(store.instances())
        assert len(list(store.read_all())) == 5
        assert store.count() == 5
        assert {s.instance_id for s in store.summaries()} == set(ids)
        assert verify(store).ok
        rows = list(store.export_rows())
        events = store.read(ids[0])
    with eventstore.open(target_url) as target:
        target.import_rows(rows)
        assert target.read(ids[0]) == events
    return ids


def test_postgres_log_shows_values_only_as_parameters(
    logged_database: Callable[[], str], postgres_server: PostgresServer
) -> None:
    import psycopg

    token = uuid.uuid4().hex
    ids = _drive_every_operation(logged_database(), logged_database(), token)
    with psycopg.connect(postgres_server.url(), autocommit=True) as con:
        cur = psycopg.ClientCursor(con)
        literals = [cur.mogrify("%s", (value,)) for value in ids]

    entries = _log_entries(postgres_server.log.read_text(errors="replace"))
    as_parameter = client_bound = 0
    problems = []
    for kind, text in entries:
        if token not in text:
            continue
        if kind == "DETAIL" and text.lower().startswith("parameters: $1 = "):
            as_parameter += 1
        elif kind == "LOG" and text.startswith("statement: ") and "pg_advisory_xact_lock(" in text:
            # The write unit's opening, bound client-side by psycopg: the
            # token only inside psycopg's own quoted literal of a value.
            rest = text
            for literal in literals:
                rest = rest.replace(literal, "<literal>")
            if token in rest:
                problems.append(f"{kind}: {text}")
            client_bound += 1
        else:
            problems.append(f"{kind}: {text}")
    assert not problems, "values inside statement texts:\n" + "\n".join(problems)
    # The check saw what it is about: bound parameters of every operation,
    # the one-flight appends (their values bound too), and the client-bound
    # openings of the plain route (appends inside transaction(), retries,
    # refusals: one per append that reads its last event).
    statements = [t for k, t in entries if k == "LOG" and t.startswith("execute ")]
    assert statements, "the server logged no extended-protocol statements"
    assert as_parameter >= 10, as_parameter
    one_flight = sum("eventstore_append_" in t for t in statements)
    # Each kind seen, so neither check passes for want of statements.
    assert client_bound >= 1 and one_flight >= 1, (client_bound, one_flight)


def test_postgres_log_check_catches_an_inlined_value(
    logged_database: Callable[[], str], postgres_server: PostgresServer
) -> None:
    """The log check can fail: a value formatted into the text shows up as such."""
    import psycopg

    token = uuid.uuid4().hex
    url = logged_database()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("SELECT %s::text", (token,))  # bound: only in DETAIL
        con.execute(psycopg.sql.SQL("SELECT {}::text").format(f"inlined-{token}"))
    entries = [(k, t) for k, t in _log_entries(postgres_server.log.read_text()) if token in t]
    assert any(k == "DETAIL" and t.lower().startswith("parameters:") for k, t in entries)
    assert any(k == "LOG" and f"inlined-{token}" in t for k, t in entries)


# -- 2. static: no SQL text built from values -----------------------------------

_SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|SET|LISTEN|NOTIFY|BEGIN"
    r"|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|VALUES|WHERE|FROM)\b"
)

# What an f-string with SQL in it may interpolate, per module, and why it is
# safe. Anything else fails the scan.
ALLOWED_INTERPOLATIONS: dict[str, dict[str, str]] = {
    "backends/postgres/integrity.py": {
        # sql.Identifier(schema, TABLE).as_string(con) in PostgresBackend: a
        # quoted identifier (the schema is validated when the store opens).
        "qualified": "quoted identifier from psycopg.sql.Identifier",
        # the loop variable over a constant tuple of planner setting names.
        "setting": "constant setting name",
        # not SQL: verify's note "amcheck not available: ... (CREATE EXTENSION
        # amcheck)" names the statement to run; the constant is never executed.
        "_UNAVAILABLE": "a Final message constant in a note",
    },
    "backends/sqlite/writer.py": {
        # _insert_sql(rows): a string of numbered ? placeholders ("(?1,?2,?3,
        # ?4,CAST(?5 AS TEXT)),..."), built from the int row count only.
        "values": "placeholder list built from ints",
    },
    "backends/sqlite/integrity.py": {
        "_MAX_MESSAGES": "a Final int constant",
        # the default "history"; the only caller passes nothing.
        "table": "constant table name",
        # an index name read from PRAGMA index_list, its quotes doubled: a
        # quoted identifier.
        "quoted": "identifier with doubled quotes",
    },
    "backends/sqlite/catalog.py": {
        # the catalog table's column list, a Final string constant.
        "COLUMNS": "a Final column list constant",
    },
    "backends/sqlite/backend.py": {
        "int(busy_timeout_ms)": "coerced to int",
        # checked against _SYNCHRONOUS (off/normal/full/extra) just before.
        "synchronous.upper()": "validated keyword",
        # the loop variable over ("history", *EVOLUTION_TABLES): constants.
        "name": "constant table name",
    },
}

# Modules whose .execute runs SQL the user typed on purpose: `eventstore query`
# runs the user's own SQL on a read-only connection (query_only plus an
# authorizer); no value of ours is built into it.
_USER_SQL_CALLS = {("cli/query.py", "sql")}

_EXECUTE = {"execute", "executemany", "executescript"}


def _looks_like_sql(node: ast.AST) -> bool:
    parts: list[str] = []
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        value = node.value
        parts.append(value.decode(errors="replace") if isinstance(value, bytes) else value)
    elif isinstance(node, ast.JoinedStr):
        parts += [str(v.value) for v in node.values if isinstance(v, ast.Constant)]
    return any(_SQL_WORDS.search(p) for p in parts)


def _is_psycopg_sql(node: ast.AST) -> bool:
    """sql.SQL(...), sql.Identifier(...), ... or a composition of them."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if isinstance(node.func.value, ast.Name) and node.func.value.id == "sql":
            return True
        if node.func.attr == "format":
            return _is_psycopg_sql(node.func.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_psycopg_sql(node.left) or _is_psycopg_sql(node.right)
    return False


def sql_building_problems(source: str, module: str) -> list[str]:
    """Where `source` builds SQL text from values.

    Anywhere in the module (SQL is composed in constants and query builders,
    not only at the call): a `%` formatting of a string with SQL in it; a
    `.format()` on a SQL string constant, or on any string passed to
    execute, unless every argument is a constant; an f-string with SQL in it
    that interpolates anything not in ALLOWED_INTERPOLATIONS. psycopg's
    `sql.SQL(...).format(sql.Identifier(...))` is quoting, hence allowed.
    """
    tree = ast.parse(source)
    allowed = ALLOWED_INTERPOLATIONS.get(module, {})
    problems: list[str] = []

    def where(node: ast.AST) -> str:
        return f"{module}:{getattr(node, 'lineno', '?')}: {ast.unparse(node)[:120]}"

    def check_format_call(node: ast.Call, passed_to_execute: bool) -> None:
        receiver = node.func.value  # type: ignore[attr-defined]
        if _is_psycopg_sql(receiver):
            return
        constant_args = all(isinstance(a, ast.Constant) for a in node.args) and all(
            isinstance(k.value, ast.Constant) for k in node.keywords
        )
        if (passed_to_execute or _looks_like_sql(receiver)) and not constant_args:
            problems.append("str.format builds SQL: " + where(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            if _looks_like_sql(node.left):
                problems.append("% formatting builds SQL: " + where(node))
        elif isinstance(node, ast.JoinedStr) and _looks_like_sql(node):
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    expr = ast.unparse(value.value)
                    if expr not in allowed:
                        problems.append(f"f-string interpolates {expr!r}: " + where(node))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "format":
                check_format_call(node, passed_to_execute=False)
            elif node.func.attr in _EXECUTE and node.args:
                query = node.args[0]
                if (module, ast.unparse(query)) in _USER_SQL_CALLS:
                    continue
                if isinstance(query, ast.JoinedStr) and not _looks_like_sql(query):
                    # an f-string passed to execute is SQL whatever its case
                    for value in query.values:
                        if isinstance(value, ast.FormattedValue):
                            expr = ast.unparse(value.value)
                            if expr not in allowed:
                                problems.append(f"f-string interpolates {expr!r}: " + where(node))
                elif isinstance(query, ast.BinOp) and isinstance(query.op, ast.Mod):
                    problems.append("% formatting passed to execute: " + where(node))
                elif (
                    isinstance(query, ast.Call)
                    and isinstance(query.func, ast.Attribute)
                    and query.func.attr == "format"
                ):
                    check_format_call(query, passed_to_execute=True)
    return problems


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_scan_covers_every_module_that_executes_sql() -> None:
    executing = [p for p in _modules() if re.search(r"\.execute(many|script)?\(", p.read_text())]
    names = {p.relative_to(PACKAGE).as_posix() for p in executing}
    assert {"backends/postgres/writer.py", "backends/sqlite/writer.py"} <= names
    assert {"backends/postgres/backend.py", "backends/sqlite/backend.py"} <= names


def test_no_sql_text_is_built_from_values() -> None:
    problems = [
        problem
        for path in _modules()
        for problem in sql_building_problems(path.read_text(), path.relative_to(PACKAGE).as_posix())
    ]
    assert not problems, "\n".join(problems)


def test_every_allowed_interpolation_is_still_used() -> None:
    """A stale allow-list entry would silently widen what the scan accepts."""
    for module, names in ALLOWED_INTERPOLATIONS.items():
        tree = ast.parse((PACKAGE / module).read_text())
        used = {
            ast.unparse(v.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.JoinedStr) and _looks_like_sql(node)
            for v in node.values
            if isinstance(v, ast.FormattedValue)
        }
        assert set(names) <= used, (module, set(names) - used)


@pytest.mark.parametrize(
    "snippet",
    [
        'cur.execute(f"select {value}")',
        'cur.execute(f"SELECT * FROM t WHERE id = {value}")',
        'cur.execute("SELECT * FROM t WHERE id = %s" % value)',
        'cur.execute("SELECT * FROM t WHERE id = %s" % (value,))',
        'cur.execute("SELECT * FROM t WHERE id = {}".format(value))',
        "QUERY = \"DELETE FROM t WHERE id = '%s'\" % value",
        'QUERY = "UPDATE t SET a = {a}".format(a=value)',
        'QUERY = f"INSERT INTO t VALUES ({value})"',
        "cur.execute(template.format(value))",
        'QUERY = b"SELECT %s" % value',
    ],
)
def test_the_scan_flags_sql_built_from_values(snippet: str) -> None:
    assert sql_building_problems(snippet, "backends/example.py"), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        'cur.execute("SELECT * FROM t WHERE id = %s", (value,))',
        'cur.execute(b"SELECT * FROM t WHERE id = %s", (value,))',
        'cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))',
        'cur.execute(sql.SQL("SELECT {} FROM t").format(sql.Literal(value)))',
        "cur.execute(QUERY, args)",
        'EDGE = " WHERE a = %s ORDER BY b {} LIMIT 1".format("ASC")',
        'message = f"cannot open {path}"',
    ],
)
def test_the_scan_accepts_bound_values(snippet: str) -> None:
    assert sql_building_problems(snippet, "backends/example.py") == []
