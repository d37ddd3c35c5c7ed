"""The one place psycopg's exceptions become eventstore's (passwords masked)."""

from __future__ import annotations

import re

import psycopg
from psycopg import errors as pg_errors

from ...errors import (
    ConflictError,
    EventStoreError,
    ReadOnlyError,
    StoreBusyError,
    StoreError,
    StoreNotFoundError,
)
from .target import mask

__all__ = ["translate"]


def translate(exc: psycopg.Error, what: str) -> EventStoreError:
    """The one place psycopg's exceptions become eventstore's (passwords masked)."""
    text = mask(" ".join(str(exc).split()) or type(exc).__name__)
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
