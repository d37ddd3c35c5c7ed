"""What replaying one execution found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..events import ErrorDetails, Event
from ._actions import Action, parse_raw

__all__ = ["ReplayResult", "ReplayStatus"]

ReplayStatus = Literal["completed", "failed", "continued_as_new", "pending"]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What replaying one execution found."""

    status: ReplayStatus
    instance_id: str
    execution_id: int
    name: str
    version: str
    output: str | None = None
    """completed: the output as JSON text; continued_as_new: the new input."""
    error: ErrorDetails | None = None
    """failed: the failure as duroxide would record it."""
    exception: BaseException | None = None
    """failed: the exception the code raised (None for a cancellation)."""
    pending_actions: tuple[Action, ...] = ()
    """Actions the code awaits: unrecorded ones (what the runtime would do next)
    and recorded ones whose completion the history does not hold yet."""
    events_replayed: int = 0
    terminal_event: Event | None = None
    custom_status: str | None = None
    kv: dict[str, str] = field(default_factory=dict)

    @property
    def value(self) -> Any:
        """The output (or continue-as-new input) decoded from JSON."""
        return None if self.output is None else parse_raw(self.output)

    @property
    def finished(self) -> bool:
        return self.status != "pending"
