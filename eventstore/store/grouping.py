"""Group commit for threads: HistoryStore.append on a backend opened with group_commit=True.

Appends of concurrent threads that arrive while a commit is in progress go
into the next one together, each in its own savepoint (the backend's
`commit_group`), so the store passes the one-commit-at-a-time limit of the
database. The check, fill and encode (`_Appender.prepare`) run in the
caller's thread before it queues; the checks against stored rows and the
insert (`_Appender.write_prepared`) run inside the group's transaction: the
same functions a plain append calls, in the same order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..events import Event
from .append import _Appender
from .protocol import GroupCommitting, GroupUnit
from .results import AppendResult

if TYPE_CHECKING:
    from .history import HistoryStore

__all__ = ["GroupedAppender", "ThreadGroup", "outcome"]


def outcome(value: Any) -> Any:
    """A unit's result, or its exception raised (in the caller's thread or task)."""
    if isinstance(value, BaseException):
        raise value
    return value


class _Pending:
    __slots__ = ("done", "result", "unit")

    def __init__(self, unit: GroupUnit) -> None:
        self.unit = unit
        self.done = False
        self.result: Any = None


class ThreadGroup:
    """Leader and followers: no thread of its own, no wait for a group to fill.

    A thread queues its unit; if no commit is in progress it becomes the
    leader, takes the queue (at most `group_size` units, oldest first) and
    commits it; threads arriving meanwhile queue and wait, and the first of
    them to wake after that commit leads the next group. So a caller waits
    for at most the commit in progress and its own (more only while more
    than `group_size` are queued ahead of it), and a lone thread commits at
    once. `run` returns only once the commit holding its unit has returned.
    """

    def __init__(self, committer: GroupCommitting) -> None:
        self._committer = committer
        self._ready = threading.Condition(threading.Lock())
        self._queue: list[_Pending] = []
        self._committing = False
        self.commits = 0
        """Groups committed (or tried) so far."""

    def run(self, unit: GroupUnit) -> Any:
        pending = _Pending(unit)
        ready = self._ready
        with ready:
            self._queue.append(pending)
            while not pending.done:
                if self._committing:
                    ready.wait()
                else:
                    self._lead()
        return outcome(pending.result)

    def _lead(self) -> None:
        """Commit the oldest queued units (called holding the condition's lock)."""
        size = self._committer.group_size
        group, self._queue[:size] = self._queue[:size], []
        self._committing = True
        self.commits += 1
        self._ready.release()
        try:
            try:
                results: list[Any] = self._committer.commit_group([p.unit for p in group])
            except BaseException as exc:  # the commit failed: so did every unit of it
                results = [exc] * len(group)
        finally:
            self._ready.acquire()
            self._committing = False
            self._ready.notify_all()
        for pending, result in zip(group, results, strict=True):
            pending.result = result
            pending.done = True


class GroupedAppender(_Appender):
    """`HistoryStore.append` through group commit; `Transaction.append` as before."""

    def __init__(self, store: HistoryStore, committer: GroupCommitting) -> None:
        super().__init__(store)
        self._committer = committer
        self._group = ThreadGroup(committer)

    def unit(
        self,
        instance_id: str,
        execution_id: int,
        events: Iterable[Event],
        expected_last_event_id: int | None,
    ) -> GroupUnit:
        """Check, fill and encode now; what runs inside the group's transaction."""
        batch = list(events)
        filled, new = self.prepare(instance_id, execution_id, batch, expected_last_event_id)
        write = self.write_prepared
        return lambda writer: write(writer, new, batch, filled, expected_last_event_id)

    def committed(self, result: AppendResult, started: float) -> AppendResult:
        """After the commit, as after a plain append: the observer hears of a write."""
        observer = self.store.observer
        if result.written and observer is not None:
            observer.appended(result.events, time.perf_counter() - started)
        return result

    def append(
        self,
        instance_id: str,
        execution_id: int,
        events: Iterable[Event],
        expected_last_event_id: int | None,
        committed_later: list[tuple[list[Event], float]] | None = None,
    ) -> AppendResult:
        if committed_later is not None or self._committer.in_transaction():
            # Inside transaction(): the append joins it (a savepoint), as
            # without group commit; queueing would wait for a lock this
            # thread holds.
            return super().append(
                instance_id, execution_id, events, expected_last_event_id, committed_later
            )
        started = time.perf_counter()
        unit = self.unit(instance_id, execution_id, events, expected_last_event_id)
        result = self.committed(self._group.run(unit), started)
        if result.written and not self.store._catalog_recorded:
            self.store._record_catalog()
        return result
