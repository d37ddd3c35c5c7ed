"""The one place psycopg's exceptions become eventstore's (passwords masked)."""

from __future__ import annotations

import re
from typing import Final

import psycopg
from psycopg import errors as pg_errors

from ...errors import (
    ConflictError,
    EventStoreError,
    InvalidEventError,
    ReadOnlyError,
    StoreBusyError,
    StoreError,
    StoreNotFoundError,
    ValidationError,
)
from .target import mask

__all__ = ["DRIVER_ERRORS", "translate"]


DRIVER_ERRORS: Final = (psycopg.Error, psycopg.Warning, OverflowError, UnicodeError)
"""What a statement can raise: psycopg's errors, and the binding failures of
a value psycopg cannot send (an integer beyond what PostgreSQL takes, a str
holding a lone surrogate)."""


def translate(exc: Exception, what: str) -> EventStoreError:
    """The one place psycopg's exceptions become eventstore's (passwords masked)."""
    text = mask(" ".join(str(exc).split()) or type(exc).__name__)
    if isinstance(exc, OverflowError | pg_errors.NumericValueOutOfRange):
        return InvalidEventError(
            f"{what}: an id is outside the range PostgreSQL's BIGINT holds ({text})"
        )
    if isinstance(exc, UnicodeError):
        return ValidationError(f"{what}: a text value is not valid Unicode ({text})")
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return ReadOnlyError(f"{what}: the store is read-only ({text})")
    if isinstance(
        exc,
        pg_errors.LockNotAvailable
        | pg_errors.DeadlockDetected
        | pg_errors.SerializationFailure
        | pg_errors.QueryCanceled,
    ):
        return StoreBusyError(f"{what}: the database stayed locked ({text})")
    if isinstance(exc, pg_errors.InvalidCatalogName | pg_errors.UndefinedTable) or (
        isinstance(exc, psycopg.OperationalError)
        and re.search(r'database ".*" does not exist', text)
    ):
        return StoreNotFoundError(f"{what}: {text}")
    if isinstance(exc, psycopg.IntegrityError):
        return ConflictError(f"{what}: {text}")
    return StoreError(f"{what}: {text}")
