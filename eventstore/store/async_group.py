"""Group commit for asyncio tasks: the leader is the first task to queue.

The event loop is one thread, so no lock or writer thread is needed to keep
one writer on the connection: the task that finds no group forming leads
one. It yields to the loop exactly once (every task ready at that moment
runs to its own append and queues it), then commits the queue in one
transaction, each append in its own savepoint (the backend's
`commit_group`), and answers every task of the group.

Why the commit runs on the loop and not on a thread: a hand-over to a
thread and back costs about 40 us, more than half a ten-event append on
its own, and a single task must lose at most a tenth against the sync
store. The grouped commit is one short call per group, not per append.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .grouping import outcome
from .protocol import GroupCommitting, GroupUnit

__all__ = ["AsyncGroup"]


_LONE_TURN = 16
"""Lone appends committed in a row before one gives the loop a turn."""


def _others_ready() -> bool:
    """Whether another callback is ready to run on this loop (a task that may join a group).

    When none is, a turn of the loop would only add its cost to a lone
    append (a tenth of a ten-event append). asyncio's loops keep the ready
    callbacks in `_ready`; on a loop without it (uvloop) every append queues.
    """
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    return ready is None or len(ready) > 0


class AsyncGroup:
    """Appends of the loop's tasks, committed together.

    `lock` is held while a group commits and by `transaction()` from start to
    end: a group waits for an open transaction (on the same connection)
    instead of running into it. A group holds at most `group_size` appends;
    a leader commits the whole queue in such groups before it lets go, and
    no timer ever holds a group open to fill: the wait is one turn of the
    loop and the commits ahead.
    """

    def __init__(self, committer: GroupCommitting) -> None:
        self._committer = committer
        self._queue: list[tuple[GroupUnit, asyncio.Future[Any]]] = []
        self._leading = False
        self._leaders: set[asyncio.Task[None]] = set()
        self.lock = asyncio.Lock()
        self.commits = 0
        """Groups committed (or tried) so far."""
        self._lone = 0  # lone appends committed since the loop last had a turn here

    async def run(self, unit: GroupUnit) -> Any:
        """Queue `unit`; return (or raise) its outcome once its group has committed."""
        if not self._queue and not self._leading and not self.lock.locked():
            # A lone append: no group forming, no other callback ready to form
            # one. It commits at once, without a future or a turn of the loop;
            # but every _LONE_TURN-th gives the loop its turn all the same, so
            # a task appending in a tight loop cannot starve the loop's I/O.
            if self._lone < _LONE_TURN and not _others_ready():
                self._lone += 1
                self.commits += 1
                return outcome(self._committer.commit_group([unit])[0])
            self._lone = 0
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((unit, future))
        if not self._leading:
            self._leading = True
            try:
                await self._lead()
            except BaseException:
                # Cancelled before its group committed: the append is dropped
                # (never committed unanswered), the others get a new leader.
                future.cancel()
                raise
            finally:
                self._leading = False
                if self._queue:
                    self._hand_over()
        return outcome(await future)

    async def _lead(self) -> None:
        await asyncio.sleep(0)  # one turn of the loop: the tasks ready now join the group
        async with self.lock:
            while self._queue:
                self._commit_next()

    def _commit_next(self) -> None:
        """Commit the oldest queued appends; answer their tasks after the commit."""
        size = self._committer.group_size
        taken, self._queue[:size] = self._queue[:size], []
        group = [(unit, future) for unit, future in taken if not future.done()]  # not cancelled
        if not group:
            return
        self.commits += 1
        try:
            results = self._committer.commit_group([unit for unit, _ in group])
        except Exception as exc:  # the commit failed: nothing of the group is stored
            results = [exc] * len(group)
        # Only here, after commit_group returned (COMMIT done), is any task
        # of the group answered: see backends/sqlite/group.py.
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _hand_over(self) -> None:
        """A task of its own leads the queue a cancelled leader left."""
        self._leading = True

        async def lead() -> None:
            try:
                await self._lead()
            finally:
                self._leading = False
                if self._queue:
                    self._hand_over()

        task = asyncio.get_running_loop().create_task(lead())
        self._leaders.add(task)
        task.add_done_callback(self._leaders.discard)

    @property
    def idle(self) -> bool:
        """True when no append is queued or committing."""
        return not self._queue and not self._leading
