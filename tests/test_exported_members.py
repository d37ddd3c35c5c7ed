"""`eventstore.__all__` is exactly the public API, and its classes read as `eventstore.X`."""

from __future__ import annotations

import enum
import types

import pytest

import eventstore


def test_every_name_in_all_exists() -> None:
    missing = [name for name in eventstore.__all__ if not hasattr(eventstore, name)]
    assert missing == []


def test_every_public_name_is_listed() -> None:
    public = {
        name
        for name, value in vars(eventstore).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public |= {"events", "__version__"}  # the event model module, and the version
    assert public == set(eventstore.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(eventstore.__all__) == len(set(eventstore.__all__))


CLASSES = sorted(name for name in eventstore.__all__ if isinstance(getattr(eventstore, name), type))


@pytest.mark.parametrize("name", CLASSES)
def test_public_classes_show_as_eventstore_x(name: str) -> None:
    cls = getattr(eventstore, name)
    assert cls.__module__ == "eventstore", f"{name} shows as {cls.__module__}.{name}"
    assert f"{cls.__module__}.{cls.__qualname__}" == f"eventstore.{name}"
    if not isinstance(cls, enum.EnumMeta):  # enums print as <enum 'Name'>
        assert repr(cls) == f"<class 'eventstore.{name}'>"


def test_a_traceback_names_the_exception_as_eventstore_x() -> None:
    import traceback

    try:
        raise eventstore.ConcurrencyError("expected 3, stored 4")
    except eventstore.ConcurrencyError as exc:
        line = traceback.format_exception_only(type(exc), exc)[-1]
    assert line.startswith("eventstore.ConcurrencyError: expected 3")


def test_the_asyncio_module_lists_exactly_its_public_names() -> None:
    import eventstore.aio

    public = {
        name
        for name, value in vars(eventstore.aio).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == "eventstore.aio"
    }
    assert public == set(eventstore.aio.__all__)
    for name in eventstore.aio.__all__:
        value = getattr(eventstore.aio, name)
        assert value.__module__ == "eventstore.aio", name


def test_the_execution_record_is_exported_and_frozen() -> None:
    record = eventstore.ExecutionRecord(
        "i", 1, "N", "1.0.0", "running", None, None, 1, 1, 9, "root"
    )
    assert "ExecutionRecord" in eventstore.__all__
    with pytest.raises(AttributeError):
        record.status = "completed"  # type: ignore[misc]
    assert record.duration_ms is None
