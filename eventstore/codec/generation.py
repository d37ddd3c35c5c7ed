"""The generations of stored event data."""

from __future__ import annotations

import enum


class Generation(enum.StrEnum):
    V1 = "V1"
    V0 = "V0"  # legacy, carrying no failure field: could be V0a or V0b
    V0A = "V0a"  # legacy failure carrying an `error` string
    V0B = "V0b"  # legacy failure carrying structured `details`
