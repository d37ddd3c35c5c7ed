"""Replay stored histories against orchestration code, without a runtime.

`replay(history, orchestration)` drives a generator function written for
duroxide's Python SDK (`def orch(ctx, input)`) against one execution's events:
the same context methods, the same values for each yield, failures raised as
duroxide raises them, and no activity ever runs. The first difference between
what the code does and what the history recorded raises ReplayMismatchError
(a NondeterminismError) naming the event, both sides and the code's location.

`replay_all(source, orchestrations)` replays every execution of a store or a
JSONL export and reports per execution. See proposals/replay.md.
"""

from ..errors import InvalidHistoryError, ReplayMismatchError
from ._actions import Action
from ._batch import (
    ExecutionReplay,
    Orchestrations,
    ReplayReport,
    find_orchestration,
    iter_executions,
    read_jsonl_executions,
    replay_all,
)
from ._context import ReplayContext, ScheduledTask
from ._display import describe_event, display_message
from ._engine import replay
from ._result import ReplayResult, ReplayStatus

__all__ = [
    "Action",
    "ExecutionReplay",
    "InvalidHistoryError",
    "Orchestrations",
    "ReplayContext",
    "ReplayMismatchError",
    "ReplayReport",
    "ReplayResult",
    "ReplayStatus",
    "ScheduledTask",
    "describe_event",
    "display_message",
    "find_orchestration",
    "iter_executions",
    "read_jsonl_executions",
    "replay",
    "replay_all",
]
