"""Storage backends: SQLite (embedded default) and PostgreSQL.

`open_backend` picks the backend for a target and checks its options: an
unknown option is named with the valid ones listed, an ill-typed one is named
with the type it needs. Only `eventstore.opening` opens backends and only the
store holds them; the CLI uses the target helpers here (`sqlite_path`,
`is_postgres`) and nothing else. SQL and driver errors stay inside these
modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ..errors import TargetError

if TYPE_CHECKING:
    from ..store.protocol import HistoryBackend

__all__ = [
    "POSTGRES_OPTIONS",
    "SQLITE_OPTIONS",
    "SUPPORTED_TARGETS",
    "Option",
    "is_postgres",
    "open_backend",
    "sqlite_path",
]


@dataclass(frozen=True, slots=True)
class Option:
    """A backend option: what it must be, and the check."""

    needs: str
    valid: Callable[[object], bool]


def _int_at_least(low: int) -> Callable[[object], bool]:
    return lambda value: type(value) is int and value >= low


def _positive_number(value: object) -> bool:
    return type(value) in (int, float) and value > 0  # type: ignore[operator]


_SYNCHRONOUS: Final = ("off", "normal", "full", "extra")

SQLITE_OPTIONS: Final[Mapping[str, Option]] = {
    "busy_timeout_ms": Option("a non-negative integer (milliseconds)", _int_at_least(0)),
    "synchronous": Option(
        f"one of {', '.join(_SYNCHRONOUS)}",
        lambda value: isinstance(value, str) and value.lower() in _SYNCHRONOUS,
    ),
    "group_commit": Option("True or False", lambda value: type(value) is bool),
    "group_size": Option("a positive integer (appends per commit)", _int_at_least(1)),
}
POSTGRES_OPTIONS: Final[Mapping[str, Option]] = {
    "schema": Option("a plain identifier (str) or None", lambda v: v is None or isinstance(v, str)),
    "pool_min_size": Option("a positive integer", _int_at_least(1)),
    "pool_max_size": Option("a positive integer", _int_at_least(1)),
    "lock_timeout_ms": Option("a positive integer (milliseconds)", _int_at_least(1)),
    "connect_timeout": Option("a positive number (seconds)", _positive_number),
    "partition_by_shard": Option("True or False", lambda value: type(value) is bool),
}


_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
SUPPORTED_TARGETS: Final = (
    "a SQLite file path, sqlite:///relative/path, sqlite:////absolute/path, :memory:"
    " or a postgresql:// URL"
)


def _refuse_unknown_scheme(target: str) -> None:
    # Only the scheme is named: the rest of a URL may hold a password.
    found = _SCHEME.match(target)
    if found and found.group(1).lower() not in ("postgresql", "postgres", "sqlite"):
        raise TargetError(
            f"{found.group(1)}:// is not a supported store; a store is {SUPPORTED_TARGETS}"
        )


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def check_options(
    kind: str, known: Mapping[str, Option], options: Mapping[str, object], also: tuple[str, ...]
) -> None:
    """Refuse an unknown or ill-typed option, naming it and what is valid."""
    for name, value in options.items():
        option = known.get(name)
        if option is None:
            valid = ", ".join([*known, *also])
            raise TargetError(f"unknown option {name!r} for a {kind} store (valid: {valid})")
        if not option.valid(value):
            raise TargetError(f"option {name} must be {option.needs}, not {value!r}")


def sqlite_path(target: str) -> str:
    """The file (or ":memory:") of a SQLite target: a plain path is that path."""
    if target == ":memory:":
        return target
    if target.startswith("sqlite:"):
        # SQLAlchemy's convention: sqlite:///relative, sqlite:////absolute.
        rest = target[len("sqlite:") :]
        if rest in ("", "//", "///", "///:memory:", "//:memory:"):
            return ":memory:"
        if not rest.startswith("///"):
            raise TargetError(
                "SQLite URLs are sqlite:///relative/path or sqlite:////absolute/path,"
                f" not {target!r}"
            )
        return rest[3:]
    return target


def open_backend(
    target: str, *, readonly: bool, options: Mapping[str, object], also: tuple[str, ...] = ()
) -> HistoryBackend:
    """The backend of `target`, opened with checked `options`.

    `also` names the options the caller takes itself, for the list of valid
    ones in an error.
    """
    if not isinstance(target, str) or not target:
        raise TargetError("a store target must be a non-empty string")
    _refuse_unknown_scheme(target)
    if type(readonly) is not bool:
        raise TargetError(f"option readonly must be True or False, not {readonly!r}")
    if is_postgres(target):
        check_options("PostgreSQL", POSTGRES_OPTIONS, options, also)
        from .postgres import PostgresBackend  # optional dependency

        return PostgresBackend(target, readonly=readonly, **options)  # type: ignore[arg-type]
    check_options("SQLite", SQLITE_OPTIONS, options, also)
    from .sqlite import SQLiteBackend

    return SQLiteBackend(sqlite_path(target), readonly=readonly, **options)  # type: ignore[arg-type]
