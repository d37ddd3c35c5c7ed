"""The instance list: the query a list page asks (filters, search, page) and its rows.

The rows come from the execution catalog (`HistoryStore.catalog_executions`,
store/catalog.py): kept beside the history by appends, derived from it on a
database duroxide created. The viewer keeps no list of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ..errors import ValidationError
from ..store import HistoryStore
from ..store.catalog import STATUSES, ExecutionRecord

__all__ = [
    "PAGE_SIZE",
    "STATUSES",
    "ListQuery",
    "list_executions",
    "parse_list_query",
]

PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500


@dataclass(frozen=True, slots=True)
class ListQuery:
    status: str | None = None
    name: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    instance_like: str | None = None
    page: int = 1
    size: int = PAGE_SIZE
    every_execution: bool = False
    """Every execution rather than each instance's latest."""


def _time_ms(name: str, raw: str) -> int:
    """Milliseconds since the epoch, or an ISO date / date-time (UTC unless it says)."""
    if raw.isdigit():
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(
            f"{name} must be a date or date-time like 2026-12-07T21:40 (UTC), or ms since"
            f" the epoch; not {raw!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _whole(name: str, raw: str, low: int, high: int) -> int:
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """The list page's query string, checked; a bad value raises ValidationError
    naming it (the app answers 400 with its message)."""
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}; not {status!r}")
    since, until = params.get("since") or "", params.get("until") or ""
    return ListQuery(
        status=status,
        name=params.get("name") or None,
        since_ms=_time_ms("since", since) if since else None,
        until_ms=_time_ms("until", until) if until else None,
        instance_like=params.get("q") or None,
        page=_whole("page", params.get("page") or "1", 1, 10**9),
        size=_whole("size", params.get("size") or str(PAGE_SIZE), 1, MAX_PAGE_SIZE),
        every_execution=params.get("all") == "1",
    )


def _like(text: str) -> str:
    """A LIKE pattern matching ids that contain `text` (its % _ and \\ taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _row(record: ExecutionRecord) -> dict[str, Any]:
    return {
        "instance_id": record.instance_id,
        "execution_id": record.execution_id,
        "name": record.name,
        "version": record.version,
        "status": record.status,
        "started_ms": record.started_ms,
        "ended_ms": record.ended_ms,
        "duration_ms": record.duration_ms,
        "event_count": record.event_count,
        "bytes": record.bytes,
    }


def list_executions(store: HistoryStore, query: ListQuery) -> dict[str, Any]:
    """One page of the catalog's executions matching `query` (newest start first,
    then those without a start time), and whether another page follows."""
    records = store.catalog_executions(
        status=query.status,
        name=query.name,
        since_ms=query.since_ms,
        until_ms=query.until_ms,
        instance_like=_like(query.instance_like) if query.instance_like else None,
        limit=query.size + 1,
        offset=(query.page - 1) * query.size,
        latest_only=not query.every_execution,
    )
    return {
        "rows": [_row(r) for r in records[: query.size]],
        "page": query.page,
        "size": query.size,
        "has_next": len(records) > query.size,
    }
