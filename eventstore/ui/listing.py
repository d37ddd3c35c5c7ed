"""The instance list: the query a list page asks (filters, search, page) and its rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ..store import HistoryStore

__all__ = [
    "PAGE_SIZE",
    "STATUSES",
    "ListQuery",
    "QueryError",
    "list_executions",
    "parse_list_query",
]

STATUSES: Final = ("running", "completed", "failed", "continued_as_new", "cancelled")
PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500


class QueryError(ValueError):
    """A query parameter the viewer cannot take (answered with 400 and this message)."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    status: str | None = None
    name: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    instance_like: str | None = None
    page: int = 1
    size: int = PAGE_SIZE


def _time_ms(name: str, raw: str) -> int:
    """Milliseconds since the epoch, or an ISO date / date-time (UTC unless it says)."""
    if raw.isdigit():
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise QueryError(
            f"{name} must be a date or date-time like 2026-12-07T21:40 (UTC), or ms since"
            f" the epoch; not {raw!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _whole(name: str, raw: str, low: int, high: int) -> int:
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise QueryError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """The list page's query string, checked; a bad value raises QueryError naming it."""
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise QueryError(f"status must be one of {', '.join(STATUSES)}; not {status!r}")
    since, until = params.get("since") or "", params.get("until") or ""
    return ListQuery(
        status=status,
        name=params.get("name") or None,
        since_ms=_time_ms("since", since) if since else None,
        until_ms=_time_ms("until", until) if until else None,
        instance_like=params.get("q") or None,
        page=_whole("page", params.get("page") or "1", 1, 10**9),
        size=_whole("size", params.get("size") or str(PAGE_SIZE), 1, MAX_PAGE_SIZE),
    )


_SUMMARY_STATUS: Final = {
    "Running": "running",
    "Completed": "completed",
    "Failed": "failed",
    "ContinuedAsNew": "continued_as_new",
}


def _summary_rows(store: HistoryStore, query: ListQuery) -> list[dict[str, Any]]:
    rows = []
    for s in store.summaries():
        if not isinstance(s.instance_id, str):
            continue
        row = {
            "instance_id": s.instance_id,
            "execution_id": s.latest_execution,
            "name": s.orchestration_name,
            "version": s.orchestration_version,
            "status": _SUMMARY_STATUS.get(s.status, s.status.lower()),
            "started_ms": None,
            "ended_ms": None,
            "event_count": s.events,
            "bytes": None,
        }
        if query.status and row["status"] != query.status:
            continue
        if query.name and row["name"] != query.name:
            continue
        if query.instance_like and query.instance_like not in s.instance_id:
            continue
        rows.append(row)
    return rows


def list_executions(store: HistoryStore, query: ListQuery) -> dict[str, Any]:
    """One page of executions matching `query`, and whether another page follows."""
    rows = _summary_rows(store, query)
    start = (query.page - 1) * query.size
    page = rows[start : start + query.size + 1]
    return {
        "rows": page[: query.size],
        "page": query.page,
        "size": query.size,
        "has_next": len(page) > query.size,
        "time_filters": False,
    }
