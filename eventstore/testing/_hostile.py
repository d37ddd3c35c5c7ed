"""Instance ids that must stay data, never SQL or a pattern (the conformance suite's)."""

from __future__ import annotations

HOSTILE = [
    "O'Brien",
    "back\\slash",
    "'; DROP TABLE history; --",
    "percent %s and %(name)s and $1",
    "semi;colon\nnew line\ttab",
    "ünïcødé-注文-🧾",
    "x" * 2000,
]
