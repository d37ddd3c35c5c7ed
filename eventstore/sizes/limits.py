"""duroxide's size limits, which a history must stay under.

From duroxide's runtime (`src/runtime/limits.rs`, its size-limits proposal
`docs/proposals/size-limits.md`, implemented May 2026): constants, not
configurable, enforced when the runtime's `enforce_size_limits` is on and
measured (metrics, `OrchestrationContext::history_size_bytes()`) when it is off.

* MAX_HISTORY_BYTES, 5 MiB: the total serialized size of one execution's
  history, the JSON of every event as the provider stores it, summed. Past
  it the turn's new events are dropped and the orchestration fails
  (Configuration LimitExceeded, resource "history"); orchestration code is
  expected to `continue_as_new` before.
* MAX_PAYLOAD_BYTES, 3 MiB: one "large payload": activity input and output,
  orchestration input and output, sub-orchestration input and output, the
  input carried by continue-as-new.
* MAX_SMALL_VALUE_BYTES, 64 KiB: small values, among them an external
  event's payload and a queue message.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_HISTORY_BYTES", "MAX_PAYLOAD_BYTES", "MAX_SMALL_VALUE_BYTES", "SOURCE"]

MAX_HISTORY_BYTES: Final = 5 * 1024 * 1024
MAX_PAYLOAD_BYTES: Final = 3 * 1024 * 1024
MAX_SMALL_VALUE_BYTES: Final = 64 * 1024
SOURCE: Final = (
    "duroxide src/runtime/limits.rs: MAX_HISTORY_BYTES, MAX_PAYLOAD_BYTES, MAX_SMALL_VALUE_BYTES"
)
