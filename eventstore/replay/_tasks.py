"""Tasks: what a yield waits for (one action, a join, a select, a retried activity).

A task starts by emitting its actions to the scheduler (the engine queues
them to match against history) and is polled after every delivery; it is
resolved when `poll` returns an Outcome.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from ._actions import Action, Outcome, parse_raw

__all__ = ["Immediate", "Join", "Primitive", "Retry", "Scheduler", "Select", "Task"]


class Scheduler(Protocol):
    """Where tasks send their actions (the engine)."""

    def emit(self, action: Action) -> None: ...

    def cancel(self, action: Action) -> None: ...


class Task:
    where: str

    def start(self, scheduler: Scheduler) -> None:
        raise NotImplementedError

    def poll(self, scheduler: Scheduler) -> Outcome | None:
        raise NotImplementedError

    def actions(self) -> list[Action]:
        return []

    def describe(self) -> str:
        return ", ".join(a.describe() for a in self.actions()) or "nothing"

    def cancel(self, scheduler: Scheduler) -> None:
        for action in self.actions():
            if action.outcome is None:
                scheduler.cancel(action)


class Primitive(Task):
    def __init__(self, action: Action) -> None:
        self.action = action
        self.where = action.where

    def start(self, scheduler: Scheduler) -> None:
        scheduler.emit(self.action)

    def poll(self, scheduler: Scheduler) -> Outcome | None:
        return self.action.outcome

    def actions(self) -> list[Action]:
        return [self.action]


class Immediate(Task):
    """Resolved as soon as yielded (a detached start), optionally with an action."""

    def __init__(self, where: str, outcome: Outcome, action: Action | None = None) -> None:
        self.where = where
        self.outcome = outcome
        self.action = action

    def start(self, scheduler: Scheduler) -> None:
        if self.action is not None:
            scheduler.emit(self.action)

    def poll(self, scheduler: Scheduler) -> Outcome | None:
        return self.outcome

    def actions(self) -> list[Action]:
        return [self.action] if self.action is not None else []


class Join(Task):
    def __init__(self, where: str, children: list[Task]) -> None:
        self.where = where
        self.children = children

    def start(self, scheduler: Scheduler) -> None:
        for child in self.children:
            child.start(scheduler)

    def poll(self, scheduler: Scheduler) -> Outcome | None:
        outcomes = [child.poll(scheduler) for child in self.children]
        if any(o is None for o in outcomes):
            return None
        items = [{"ok" if o.ok else "err": parse_raw(o.raw)} for o in outcomes if o is not None]
        return Outcome(True, json.dumps(items))

    def actions(self) -> list[Action]:
        return [a for child in self.children for a in child.actions()]


class Select(Task):
    """select2: the first child to resolve, in history order, wins."""

    def __init__(self, where: str, children: list[Task], *, wrap: bool = True) -> None:
        self.where = where
        self.children = children
        self.wrap = wrap
        self.winner: int | None = None

    def start(self, scheduler: Scheduler) -> None:
        for child in self.children:
            child.start(scheduler)

    @staticmethod
    def _seq(child: Task) -> int:
        seqs = [a.seq for a in child.actions() if a.outcome is not None]
        return max(seqs) if seqs else 0

    def poll(self, scheduler: Scheduler) -> Outcome | None:
        best: tuple[int, int, Outcome] | None = None
        for index, child in enumerate(self.children):
            outcome = child.poll(scheduler)
            if outcome is None:
                continue
            key = (self._seq(child), index, outcome)
            if best is None or key[:2] < best[:2]:
                best = key
        if best is None:
            return None
        _, index, outcome = best
        self.winner = index
        for other, child in enumerate(self.children):
            if other != index:
                child.cancel(scheduler)
        if not self.wrap or not outcome.ok:
            # duroxide >= 0.2: a failed winner raises as the task alone would.
            return outcome
        return Outcome(True, json.dumps({"index": index, "value": parse_raw(outcome.raw)}))

    def actions(self) -> list[Action]:
        return [a for child in self.children for a in child.actions()]


class Retry(Task):
    """schedule_activity_with_retry: attempts, a timeout race, backoff timers."""

    def __init__(self, where: str, make_attempt: Callable[[], Action], retry: dict[str, Any]):
        self.where = where
        self.make_attempt = make_attempt
        self.max_attempts = max(1, int(retry.get("maxAttempts") or 3))
        timeout = retry.get("timeoutMs")
        self.timeout_ms = int(timeout) if timeout else None
        self.attempt = 0
        self.current: Task | None = None
        self.backoff: Action | None = None
        self.last_error = ""
        self._all: list[Action] = []

    def _start_attempt(self, scheduler: Scheduler) -> None:
        self.attempt += 1
        activity = self.make_attempt()
        if self.timeout_ms is not None:
            timer = Action("timer", self.where, delay_ms=self.timeout_ms)
            self.current = Select(self.where, [Primitive(activity), Primitive(timer)], wrap=False)
        else:
            self.current = Primitive(activity)
        self._all.extend(self.current.actions())
        self.current.start(scheduler)

    def start(self, scheduler: Scheduler) -> None:
        self._start_attempt(scheduler)

    def poll(self, scheduler: Scheduler) -> Outcome | None:
        while True:
            if self.backoff is not None:
                if self.backoff.outcome is None:
                    return None
                self.backoff = None
                self._start_attempt(scheduler)
            assert self.current is not None
            outcome = self.current.poll(scheduler)
            if outcome is None:
                return None
            if isinstance(self.current, Select) and self.current.winner == 1:
                return Outcome(False, "timeout: activity timed out")
            if outcome.ok:
                return outcome
            self.last_error = outcome.raw
            if self.attempt >= self.max_attempts:
                return Outcome(False, self.last_error)
            self.backoff = Action("timer", self.where)
            self._all.append(self.backoff)
            scheduler.emit(self.backoff)

    def actions(self) -> list[Action]:
        return list(self._all)
