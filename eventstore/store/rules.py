"""The history rules, once: what append refuses is what verify reports.

Within one execution:

* event ids are contiguous from 1 (1, 2, 3 ...), as duroxide numbers them;
  the one exception is duroxide's own: the OrchestrationFailed it records
  for a poisoned message carries event id 99999, outside the sequence
  (gaps in stored legacy data are tolerated by verify, never made by append:
  see `eventstore.store.verify`);
* exactly one OrchestrationStarted, and it comes first;
* nothing follows a terminal event (completed, failed, continued as new);
* every completion, failure, timer firing and cancellation names by
  `source_event_id` an earlier event of the matching kind
  (`events.COMPLETION_SOURCES`).

`ExecutionRules` holds the little state these need and judges one event at a
time. verify feeds it every stored event of an execution; append starts it
from what is stored (the last event, and whether the execution started) and
asks the transaction for the type of a referenced event it has not seen, one
indexed lookup per id, so no append reads the whole history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .. import events as ev
from .._words import a

__all__ = [
    "POISON_EVENT_ID",
    "ExecutionRules",
    "SOURCE_SPAN",
    "RuleViolation",
    "batch_clears",
    "clearing_condition",
    "stored_sources",
]

POISON_EVENT_ID: Final = 99999
"""The event id duroxide gives the OrchestrationFailed of a poisoned message."""


_SKIPPED: Final = "(corrupt row)"
"""The type `ExecutionRules.skip` records for a row it could not judge."""


class RuleViolation:
    """One broken rule: its kind (as verify names it) and what happened."""

    __slots__ = ("event_id", "kind", "message")

    def __init__(self, kind: str, event_id: int, message: str) -> None:
        self.kind = kind
        """ordering | gap | orphan-completion"""
        self.event_id = event_id
        self.message = message

    def __repr__(self) -> str:
        return f"RuleViolation({self.kind!r}, {self.event_id}, {self.message!r})"


def is_poison_failure(event: ev.Event) -> bool:
    return event.event_id == POISON_EVENT_ID and event.event_type == "OrchestrationFailed"


class ExecutionRules:
    """The rules for one execution, judged one event at a time, in id order."""

    __slots__ = ("last_event_id", "lookup", "started", "terminal", "types_by_id")

    def __init__(
        self,
        *,
        last_event_id: int = 0,
        started: bool = False,
        terminal: int | None = None,
        lookup: Callable[[int], str | None] | None = None,
    ) -> None:
        self.last_event_id = last_event_id
        """The id of the last event seen (stored, or judged before)."""
        self.started = started
        """Whether an OrchestrationStarted was seen."""
        self.terminal = terminal
        """The id of the terminal event, once one was seen."""
        self.types_by_id: dict[int, str] = {}
        self.lookup = lookup
        """Type of an event judged before this object existed (append: a stored row)."""

    def _source_type(self, source: int | None) -> str | None:
        if source is None:
            return None
        found = self.types_by_id.get(source)
        if found is None and self.lookup is not None and 0 < source <= self.last_event_id:
            found = self.lookup(source)
        return found

    def skip(self, event_id: int) -> None:
        """A stored row that could not be judged (verify reports it as corrupt):
        the next id follows it, and an event naming it as its source is not
        reported a second time."""
        self.types_by_id[event_id] = _SKIPPED
        self.last_event_id = max(self.last_event_id, event_id)

    def check(self, event: ev.Event) -> list[RuleViolation]:
        """The rules `event` breaks, coming after everything seen so far; then
        it counts as seen."""
        event_type = event.event_type
        event_id = event.event_id
        problems: list[RuleViolation] = []
        if event_type == "OrchestrationStarted":
            if self.started or self.last_event_id:
                problems.append(
                    RuleViolation(
                        "ordering",
                        event_id,
                        "a second OrchestrationStarted"
                        if self.started
                        else f"OrchestrationStarted after event {self.last_event_id}",
                    )
                )
            self.started = True
        elif not self.started and self.last_event_id == 0:
            problems.append(
                RuleViolation(
                    "ordering",
                    event_id,
                    f"execution starts with {event_type}, not OrchestrationStarted",
                )
            )
        if self.terminal is not None:
            problems.append(
                RuleViolation(
                    "ordering", event_id, f"{event_type} after the terminal event {self.terminal}"
                )
            )
        expected = self.last_event_id + 1
        if event_id != expected and not is_poison_failure(event):
            problems.append(
                RuleViolation(
                    "gap",
                    event_id,
                    f"event id {event_id} where {expected} comes next (ids run 1, 2, 3 ...)",
                )
            )
        sources = ev.COMPLETION_SOURCES.get(event_type)
        if sources is not None:
            source = event.source_event_id
            source_type = self._source_type(source)
            if source_type not in sources and source_type != _SKIPPED:
                found = a(source_type) if source_type else "nothing"
                problems.append(
                    RuleViolation(
                        "orphan-completion",
                        event_id,
                        f"{event_type} names source event {source}, which is {found} "
                        f"(expected {' or '.join(sorted(sources))})",
                    )
                )
        if event_type in ev.TERMINAL_TYPES and self.terminal is None:
            self.terminal = event_id
        self.types_by_id[event_id] = event_type
        self.last_event_id = max(self.last_event_id, event_id)
        return problems


# --------------------------------------------------------------------------
# The append's common batch, cleared in one light pass
# --------------------------------------------------------------------------
#
# Not a second set of rules: a sound shortcut in front of ExecutionRules. It
# only says "this batch breaks none of the rules above" when that follows from
# a few whole-list tests and one pass that looks up each completion's source;
# every batch it does not clear is walked by ExecutionRules, which names what
# is broken. tests/test_rules_shortcut.py holds it to that with Hypothesis.
#
# Why a plain loop: an earlier version built dicts, sets and zips to avoid a
# Python step per event, and cost 7.7 us per ten-event batch; this loop costs
# 1.4 us (measured on the append benchmark's batches).

_STARTED: Final = "OrchestrationStarted"


def batch_clears(
    event_ids: list[int],
    event_types: list[str],
    events: list[ev.Event],
    last_id: int,
    last_type: str,
    stored: Callable[[int], str | None] | None = None,
) -> bool:
    """True when a batch appended after the stored event `last_id` (of type
    `last_type`; "" when nothing is stored) breaks none of the rules; False
    says only that `ExecutionRules` must walk it. `stored` answers a source
    before the stored last event (see `clearing_condition`)."""
    clears, wanted = clearing_condition(event_ids, event_types, events, last_id, stored)
    return clears and last_type not in ev.TERMINAL_TYPES and (wanted is None or last_type in wanted)


def clearing_condition(
    event_ids: list[int],
    event_types: list[str],
    events: list[ev.Event],
    last_id: int,
    stored: Callable[[int], str | None] | None = None,
) -> tuple[bool, frozenset[str] | None]:
    """What a batch appended after the stored event `last_id` asks of that
    event's type to break none of the rules without a walk: (False, None)
    when it needs the walk whatever is stored; else (True, wanted): it clears
    when the stored last event is not terminal and, when `wanted` is not
    None (a completion of the batch names it), of one of those types.
    `batch_clears` and the one-flight append (store/one_flight.py) both ask.

    `event_ids` strictly increase (the append checked that while preparing
    the batch), so first and last in place make them contiguous. A source
    before the stored last event is answered by `stored` (the walk's own
    lookup of stored types, after the append read them); without it, it
    sends the batch to the walk.
    """
    count = len(event_ids)
    if not (
        count > 0
        and event_ids[0] == last_id + 1
        and event_ids[-1] == last_id + count
        and event_types.count(_STARTED) == (last_id == 0)
        and (last_id > 0 or event_types[0] == _STARTED)
        and ev.TERMINAL_TYPES.isdisjoint(event_types[:-1])
    ):
        return False, None
    # event_types[k - 1] is the type of event id last_id + k (contiguous, as
    # just checked); id last_id itself is the stored event, whose type the
    # caller holds.
    wanted: frozenset[str] | None = None
    kinds = ev.COMPLETION_SOURCES
    for event, event_type in zip(events, event_types, strict=True):
        allowed = kinds.get(event_type)
        if allowed is not None:
            source = event.source_event_id
            if source is None or source >= event.event_id:
                return False, None
            if source < last_id:
                # before the stored last event: only `stored` can answer
                if stored is None or source <= 0 or stored(source) not in allowed:
                    return False, None
            elif source == last_id:
                wanted = allowed if wanted is None else wanted & allowed
                if not wanted or last_id == 0:
                    return False, None
            elif event_types[source - last_id - 1] not in allowed:
                return False, None
    return True, wanted


SOURCE_SPAN: Final = 64
"""At most this many ids between the stored events a batch names for one read."""


def stored_sources(filled: list[ev.Event], last: int) -> tuple[int, int]:
    """The first and last stored id the batch's completions name, when they
    lie within `SOURCE_SPAN` ids; else an empty range (1, 0)."""
    kinds = ev.COMPLETION_SOURCES
    named = [
        event.source_event_id
        for event in filled
        if event.event_type in kinds
        and event.source_event_id is not None
        and 0 < event.source_event_id <= last
    ]
    if not named or max(named) - min(named) >= SOURCE_SPAN:
        return 1, 0
    return min(named), max(named)
