"""Every driver exception is translated at the backend boundary (like httpx's test_exceptions).

Each backend has one translation function; every exception class sqlite3 and
psycopg define (found by iterating the modules, so a new driver release is
covered too) and the interpreter errors their bindings raise must come out
as an eventstore exception. The end-to-end tests below check that ids beyond
64 bits and text that is not valid Unicode reach no caller as driver errors.
"""

from __future__ import annotations

import ast
import inspect
import sqlite3
from pathlib import Path

import pytest

import eventstore
from eventstore import errors
from eventstore.backends.sqlite import translate as sqlite_translate
from eventstore.errors import EventStoreError, InvalidEventError, StoreBusyError, ValidationError


def _exception_classes(module: object) -> list[type[BaseException]]:
    return sorted(
        {
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, Exception)
        },
        key=lambda cls: cls.__qualname__,
    )


def _interpreter_errors() -> list[BaseException]:
    return [
        OverflowError("Python int too large to convert to SQLite INTEGER"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    ]


SQLITE_CLASSES = [c for c in _exception_classes(sqlite3) if c.__module__ == "sqlite3"]


def test_sqlite3_has_the_classes_we_expect_to_iterate() -> None:
    names = {c.__name__ for c in SQLITE_CLASSES}
    assert {"Error", "Warning", "OperationalError", "IntegrityError", "DataError"} <= names


@pytest.mark.parametrize("cls", SQLITE_CLASSES, ids=lambda c: c.__name__)
def test_every_sqlite3_exception_is_translated(cls: type[Exception]) -> None:
    translated = sqlite_translate(cls("database is locked"), "read failed")
    assert isinstance(translated, EventStoreError)
    assert "read failed" in str(translated)


@pytest.mark.parametrize("exc", _interpreter_errors(), ids=lambda e: type(e).__name__)
def test_binding_errors_are_translated_on_sqlite(exc: Exception) -> None:
    translated = sqlite_translate(exc, "write failed")
    assert isinstance(translated, ValidationError)


def test_a_locked_sqlite_database_is_busy_not_a_generic_error() -> None:
    translated = sqlite_translate(sqlite3.OperationalError("database is locked"), "write failed")
    assert type(translated) is StoreBusyError


def _psycopg_classes() -> list[type[BaseException]]:
    psycopg = pytest.importorskip("psycopg")
    import psycopg_pool

    found = _exception_classes(psycopg.errors) + _exception_classes(psycopg)
    found += _exception_classes(psycopg_pool)
    return sorted(set(found), key=lambda cls: (cls.__module__, cls.__qualname__))


def test_psycopg_errors_are_many() -> None:
    # Iterating the module finds every SQLSTATE class, not a hand-picked few.
    assert len(_psycopg_classes()) > 200


def test_every_psycopg_exception_is_translated() -> None:
    from eventstore.backends.postgres import translate

    escaped = []
    for cls in _psycopg_classes():
        try:
            exc = cls("server said no; password=s3cr3t")
        except TypeError:  # pragma: no cover - every class takes a message today
            exc = cls()
        translated = translate(exc, "read failed")  # type: ignore[arg-type]
        if not isinstance(translated, EventStoreError) or "s3cr3t" in str(translated):
            escaped.append(cls.__qualname__)
    assert escaped == []


@pytest.mark.parametrize("exc", _interpreter_errors(), ids=lambda e: type(e).__name__)
def test_binding_errors_are_translated_on_postgres(exc: Exception) -> None:
    pytest.importorskip("psycopg")
    from eventstore.backends.postgres import translate

    assert isinstance(translate(exc, "write failed"), ValidationError)  # type: ignore[arg-type]


def test_postgres_range_errors_are_invalid_events() -> None:
    psycopg = pytest.importorskip("psycopg")
    from eventstore.backends.postgres import translate

    out_of_range = psycopg.errors.NumericValueOutOfRange("bigint out of range")
    assert isinstance(translate(out_of_range, "write failed"), InvalidEventError)


# -- one module holds every exception --------------------------------------------


def test_every_exception_class_of_the_package_is_defined_in_errors() -> None:
    root = Path(eventstore.__file__).parent
    exception_bases = {name for name, _ in inspect.getmembers(errors, inspect.isclass)}
    exception_bases |= {"Exception", "BaseException", "ValueError", "TypeError", "Warning"}
    elsewhere = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "errors.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                }
                if bases & exception_bases and (
                    node.name.endswith(("Error", "Exception", "Warning")) or bases & {"Exception"}
                ):
                    elsewhere.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    assert elsewhere == []


def test_the_tree_in_the_docstring_names_every_exception() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, Exception):
            assert name in doc, f"{name} is missing from the tree in eventstore.errors"
            assert issubclass(cls, EventStoreError)


# -- end to end: nothing untranslated reaches a caller ---------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> eventstore.HistoryStore:
    if request.param == "sqlite":
        store = eventstore.open(str(tmp_path / "h.db"))
    else:
        pytest.importorskip("psycopg")
        store = eventstore.open(request.getfixturevalue("postgres_target_factory")())
    request.addfinalizer(store.close)
    return store


HUGE = 2**64


def test_ids_beyond_64_bits_read_as_nothing(any_store: eventstore.HistoryStore) -> None:
    from eventstore.testing import HistoryBuilder

    any_store.append("i", 1, HistoryBuilder("i", "Hello").build())
    assert any_store.read("i", HUGE) == []
    assert any_store.last_event_id("i", HUGE) == 0
    assert any_store.read("i", -HUGE) == []
    assert list(any_store.read_all(after=HUGE)) == []
    assert any_store.key_at(HUGE) is None
    assert [e.event_id for e in any_store.read("i")] == [1]


def test_an_event_id_beyond_64_bits_is_refused_and_nothing_is_stored(
    any_store: eventstore.HistoryStore,
) -> None:
    from eventstore import events as ev

    started = ev.OrchestrationStarted(event_id=1, name="N", version="1.0.0", input="null")
    with pytest.raises(ValidationError):
        any_store.append("i", 1, [started, ev.OrchestrationCompleted(event_id=HUGE, output="1")])
    with pytest.raises(ValidationError):
        any_store.append("j", HUGE, [started])
    assert any_store.read("i") == [] and any_store.count() == 0


def test_an_instance_id_that_is_not_unicode_is_a_validation_error(
    any_store: eventstore.HistoryStore,
) -> None:
    with pytest.raises(ValidationError):
        any_store.read("bad\ud800", 1)
    with pytest.raises(ValidationError):
        any_store.last_event_id("bad\ud800")
