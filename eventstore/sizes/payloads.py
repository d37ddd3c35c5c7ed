"""Which event fields are payloads, what kind of limit each is under, and how
they are measured: the one rule, for `eventstore sizes` and the exporter.

Payloads are JSON documents carried as strings; duroxide measures a payload
as the length of that string in bytes (UTF-8), before the event's own JSON
escapes it, and a history as the bytes of each event's JSON as stored.
"""

from __future__ import annotations

from typing import Final

from .. import events as ev
from .limits import MAX_PAYLOAD_BYTES, MAX_SMALL_VALUE_BYTES

__all__ = ["ACTIVITY", "EXTERNAL", "KIND_LIMITS", "ORCHESTRATION", "PAYLOAD_FIELDS", "utf8_len"]

ORCHESTRATION: Final = "orchestration"
"""Orchestration input, output and continue-as-new input, and a sub-orchestration's
input and result (under the child orchestration's name)."""
ACTIVITY: Final = "activity"
"""Activity input and result (under the activity's name)."""
EXTERNAL: Final = "external"
"""An external event's or queued message's data (under the event's name)."""

KIND_LIMITS: Final = {
    ORCHESTRATION: MAX_PAYLOAD_BYTES,
    ACTIVITY: MAX_PAYLOAD_BYTES,
    EXTERNAL: MAX_SMALL_VALUE_BYTES,
}

PAYLOAD_FIELDS: Final[dict[type, tuple[str, str]]] = {
    ev.OrchestrationStarted: (ORCHESTRATION, "input"),
    ev.OrchestrationCompleted: (ORCHESTRATION, "output"),
    ev.OrchestrationContinuedAsNew: (ORCHESTRATION, "input"),
    ev.SubOrchestrationScheduled: (ORCHESTRATION, "input"),
    ev.SubOrchestrationCompleted: (ORCHESTRATION, "result"),
    ev.ActivityScheduled: (ACTIVITY, "input"),
    ev.ActivityCompleted: (ACTIVITY, "result"),
    ev.ExternalEvent: (EXTERNAL, "data"),
    ev.ExternalEventPersistent: (EXTERNAL, "data"),
}
"""Event type -> (payload kind, field). Whose name a payload goes under: the
event's own name (activity, sub-orchestration and external events), the
execution's orchestration, or, for a completion, the name its scheduling
event gave."""


def utf8_len(text: str) -> int:
    """Bytes of `text` in UTF-8 (no copy for ASCII, the usual case)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
