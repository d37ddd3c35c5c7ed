"""External events: subscriptions filled by name and arrival order, queues first-in first-out."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from ._actions import Action, Outcome

__all__ = ["Inbox"]


class Inbox:
    """Where external events wait for the subscriptions that receive them.

    A `wait_for_event` subscription takes the arrival of its name with its
    own position among the active (not cancelled) subscriptions of that name;
    an arrival nobody subscribed for yet is dropped, as duroxide drops it.
    Queued (persistent) events are handed to `dequeue_event` subscriptions in
    order and kept until one asks.
    """

    def __init__(
        self,
        deliver: Callable[[Action, Outcome], None],
        carried: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._deliver = deliver
        self._subs: dict[str, list[Action]] = {}
        self._arrivals: dict[str, list[str]] = {}
        self._queue_subs: list[Action] = []
        self._queued: dict[str, deque[str]] = {}
        for name, data in carried:
            self._queued.setdefault(name, deque()).append(data)

    def subscribe(self, name: str, action: Action) -> None:
        self._subs.setdefault(name, []).append(action)
        self._fill_slots(name)

    def arrive(self, name: str, data: str) -> None:
        active = self._active(name)
        arrivals = self._arrivals.setdefault(name, [])
        if len(active) > len(arrivals):
            arrivals.append(data)
            self._fill_slots(name)

    def subscribe_queue(self, name: str, action: Action) -> None:
        self._queue_subs.append(action)
        self._pump(name)

    def enqueue(self, name: str, data: str) -> None:
        self._queued.setdefault(name, deque()).append(data)
        self._pump(name)

    def _active(self, name: str) -> list[Action]:
        return [s for s in self._subs.get(name, []) if not s.cancelled]

    def _fill_slots(self, name: str) -> None:
        arrivals = self._arrivals.get(name, [])
        for index, sub in enumerate(self._active(name)):
            if sub.outcome is None and index < len(arrivals):
                self._deliver(sub, Outcome(True, arrivals[index]))

    def _pump(self, name: str) -> None:
        messages = self._queued.get(name)
        if not messages:
            return
        for sub in self._queue_subs:
            if not messages:
                return
            if sub.name == name and not sub.cancelled and sub.outcome is None:
                self._deliver(sub, Outcome(True, messages.popleft()))
