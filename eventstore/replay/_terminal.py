"""The terminal event: the code must have ended the same way, with the same value.

Before it, every action still queued must have been recorded (legacy V0
histories excepted for state changes they could not record); then the code
must have finished as the event says (completed, failed, continued as new)
with the stored output, failure message or new input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .. import events as ev
from ..events import Event
from ._actions import same_json
from ._display import describe_event, display_message, summary_line
from ._matching import skippable, unrecorded
from ._result import ReplayStatus

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["check_terminal"]

_EXPECTED: Final[dict[ReplayStatus, type[Event]]] = {
    "completed": ev.OrchestrationCompleted,
    "failed": ev.OrchestrationFailed,
    "continued_as_new": ev.OrchestrationContinuedAsNew,
}
"""How the code finished -> the terminal event that records it."""


def check_terminal(engine: Engine, event: Event) -> None:
    """Raise ReplayMismatchError unless `event` records how the code ended."""
    _check_nothing_unrecorded(engine, event)
    if engine.finished is None:
        state, where = engine.code_state()
        engine.mismatch(event, describe_event(event), state, where)
    state, where = engine.code_state()
    if type(event) is not _EXPECTED[engine.finished]:
        engine.mismatch(event, describe_event(event), state, where)
    attempted = _different_ending(engine, event)
    if attempted is not None:
        engine.mismatch(event, describe_event(event), attempted, where)


def _check_nothing_unrecorded(engine: Engine, event: Event) -> None:
    """Recorded-only actions still queued: V1 must hold them before the end."""
    while engine.queue:
        action = engine.queue[0]
        if skippable(action, event):
            engine.queue.popleft()
            continue
        engine.mismatch(event, describe_event(event), unrecorded(action, event), action.where)


def _different_ending(engine: Engine, event: Event) -> str | None:
    """What the code ended with, when the event (of the right type) stores another value."""
    match event:
        case ev.OrchestrationCompleted(output=output):
            assert engine.output is not None
            if not same_json(output, engine.output):
                return f"returned {engine.output}"
        case ev.OrchestrationContinuedAsNew(input=data):
            assert engine.output is not None
            if not same_json(data, engine.output):
                return f"continued as new with {engine.output}"
        case ev.OrchestrationFailed(details=details):
            assert engine.error is not None
            mine = summary_line(display_message(engine.error))
            if summary_line(display_message(details)) != mine:
                return f"failed with {mine!r}"
    return None
