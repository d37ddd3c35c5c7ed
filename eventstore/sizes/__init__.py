"""History sizes against duroxide's limits: the limits (`limits`), what a
payload is (`payloads`), and the advisor behind `eventstore sizes`
(`eventstore.sizes.advisor`, imported where used). See proposals/viewer.md.
"""

from __future__ import annotations

from .limits import MAX_HISTORY_BYTES, MAX_PAYLOAD_BYTES, MAX_SMALL_VALUE_BYTES
from .payloads import ACTIVITY, EXTERNAL, KIND_LIMITS, ORCHESTRATION, PAYLOAD_FIELDS, utf8_len

__all__ = [
    "ACTIVITY",
    "EXTERNAL",
    "KIND_LIMITS",
    "MAX_HISTORY_BYTES",
    "MAX_PAYLOAD_BYTES",
    "MAX_SMALL_VALUE_BYTES",
    "ORCHESTRATION",
    "PAYLOAD_FIELDS",
    "utf8_len",
]
