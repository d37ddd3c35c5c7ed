"""What the duration metrics are called, how they are bucketed, and their labels.

duroxide's names, buckets and label values, so existing dashboards work
against the metrics computed here from stored timestamps.
"""

from __future__ import annotations

from typing import Final

from .. import events as ev
from .limits import UNKNOWN

__all__ = [
    "ACTIVITY_BUCKETS",
    "APPEND_LATENCY_BUCKETS",
    "HISTORY_BYTES_BUCKETS",
    "HISTORY_SIZE_BUCKETS",
    "ORCHESTRATION_BUCKETS",
    "SUBORCHESTRATION_BUCKETS",
    "Metric",
    "Reason",
    "activity_outcome",
]

# duroxide's buckets (its metrics specification), so dashboards' `le` values match.
ORCHESTRATION_BUCKETS: Final = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600)
ACTIVITY_BUCKETS: Final = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
SUBORCHESTRATION_BUCKETS: Final = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 600)
HISTORY_SIZE_BUCKETS: Final = (10, 50, 100, 500, 1000, 5000, 10000)
_KIB: Final = 1024
_MIB: Final = 1024 * 1024
HISTORY_BYTES_BUCKETS: Final = (
    4 * _KIB,
    16 * _KIB,
    64 * _KIB,
    256 * _KIB,
    _MIB,
    2 * _MIB,
    3 * _MIB,
    4 * _MIB,
    5 * _MIB,
)
"""Stored bytes of an execution: 1 MiB is the advisor's default threshold
(continue as new past it), 5 MiB duroxide's MAX_HISTORY_BYTES."""
APPEND_LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

RETRY_ATTEMPT: Final = "0"
"""duroxide has no built-in activity retry and labels every execution "0"; a
retry written in orchestration code is a new ActivityScheduled, so the
history agrees."""
FINAL_TURN_COUNT: Final = UNKNOWN
"""Turns are not recorded in the history (a turn's events are not marked), so
the label exists for dashboards but says "unknown"."""


class Metric:
    """Names of the duration histograms (the `metric` label of the unavailable counter)."""

    ORCHESTRATION: Final = "duroxide_orchestration_duration_seconds"
    ACTIVITY: Final = "duroxide_activity_duration_seconds"
    SUBORCHESTRATION: Final = "duroxide_suborchestration_duration_seconds"


class Reason:
    """Why a duration could not be computed (the `reason` label)."""

    MISSING_TIMESTAMP: Final = "missing_timestamp"
    """The start or the end event has no timestamp (legacy V0 rows)."""
    NEGATIVE_DURATION: Final = "negative_duration"
    """The end is stamped before the start (clock skew between writers)."""
    MISSING_START: Final = "missing_start"
    """The end event names a start that was never seen."""


ORCHESTRATION_STATUS: Final[dict[type[ev.EventBase], str]] = {
    ev.OrchestrationCompleted: "success",
    ev.OrchestrationFailed: "failed",  # cancellation included, as duroxide records it
    ev.OrchestrationContinuedAsNew: "continuedAsNew",
}


def activity_outcome(details: ev.ErrorDetails | None) -> str:
    """duroxide's `outcome` label for an activity that completed (None) or failed."""
    if details is None:
        return "success"
    if isinstance(details, ev.ApplicationError):
        return "cancelled" if isinstance(details.kind, ev.Cancelled) else "app_error"
    if isinstance(details, ev.InfrastructureError):
        return "infra_error"
    if isinstance(details, ev.ConfigurationError):
        return "config_error"
    if isinstance(details, ev.PoisonError):
        return "poison"
    return "unknown_error"
