"""The rules for a row's identity, applied by append and by import alike.

One place, so that nothing a store accepts through one door is refused by
the other (or by the other backend: PostgreSQL cannot hold NUL in TEXT, and
neither backend holds an integer past 2**63-1).
"""

from __future__ import annotations

from typing import Final

from ..errors import InvalidEventError, Location

__all__ = ["MAX_ID", "check_identity"]

MAX_ID: Final = 2**63 - 1
"""The largest execution or event id a store holds (SQLite INTEGER, PostgreSQL BIGINT)."""


def check_identity(
    instance_id: object, execution_id: object, *, location: Location | None = None
) -> None:
    """Raise InvalidEventError unless the pair can name an execution in any store."""
    if not isinstance(instance_id, str) or not instance_id or "\x00" in instance_id:
        raise InvalidEventError(
            "instance_id must be a non-empty string without NUL", location=location
        )
    if type(execution_id) is not int or not 1 <= execution_id <= MAX_ID:
        raise InvalidEventError(
            f"execution_id must be an integer from 1 to 2**63-1, not {execution_id!r}",
            location=location,
        )
