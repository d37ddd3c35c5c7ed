"""The generations of stored event data."""

from __future__ import annotations

import enum


class Generation(enum.StrEnum):
    V1 = "V1"
    V0 = "V0"  # legacy, carrying no failure field: could be V0a or V0b
    V0A = "V0a"  # legacy failure carrying an `error` string
    V0B = "V0b"  # legacy failure carrying structured `details`


def legacy_shaped(data: bytes | str) -> bool:
    """The generation sniff, one byte: does the first key start upper-case?

    V1 keys are snake_case (`{"event_id":...`), a legacy event's only key is
    its CamelCase type name (`{"ActivityScheduled":...`). Only a guess for
    the fast routes: `Codec.decode_detailed` is the classifier, and whatever
    the sniff misses (leading whitespace, say) it still reads right.
    """
    return data[2:3].isupper()
