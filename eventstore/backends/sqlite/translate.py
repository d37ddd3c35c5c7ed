"""The one place sqlite3's exceptions (and the driver's binding errors) become eventstore's."""

from __future__ import annotations

import sqlite3
from typing import Final

from ...errors import (
    ConflictError,
    EventStoreError,
    InvalidEventError,
    ReadOnlyError,
    StoreBusyError,
    StoreError,
    ValidationError,
)

__all__ = ["BINDING_ERRORS", "translate", "unmatchable"]


def translate(exc: Exception, what: str) -> EventStoreError:
    """The one place sqlite3's exceptions (and the driver's binding errors) become eventstore's.

    Besides sqlite3.Error, binding a value raises plain Python errors:
    OverflowError for an integer outside SQLite's signed 64 bits and
    UnicodeEncodeError for a str holding a lone surrogate.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OverflowError):
        return InvalidEventError(
            f"{what}: an id is outside the range SQLite stores (-2**63 .. 2**63-1)"
        )
    if isinstance(exc, UnicodeError):
        return ValidationError(f"{what}: a text value is not valid Unicode ({text})")
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in text or "busy" in text:
            return StoreBusyError(f"{what}: the database stayed locked ({text})")
        if "readonly" in text or "read-only" in text:
            return ReadOnlyError(f"{what}: the store is read-only ({text})")
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(f"{what}: {text}")
    return StoreError(f"{what}: {text}")


BINDING_ERRORS: Final = (sqlite3.Error, sqlite3.Warning, OverflowError, UnicodeError)
"""What a statement can raise: sqlite3's errors and binding failures (see translate)."""


def unmatchable(args: tuple[object, ...]) -> tuple[object, ...]:
    """`args` with every integer beyond 64 bits as a float.

    No stored INTEGER equals such a value, and SQLite compares integers with
    floats exactly, so an equality finds nothing and a range comparison
    answers as it would for the integer: a read with an id of 2**64 returns
    nothing, as it does on PostgreSQL.
    """
    return tuple(float(a) if type(a) is int and not -(2**63) <= a < 2**63 else a for a in args)
