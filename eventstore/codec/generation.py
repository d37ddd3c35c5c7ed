"""The generations of stored event data."""

from __future__ import annotations

import enum
import re
from typing import Final


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


# The sniff of every line but the first, in one pass: a newline, any two
# bytes, an upper-case one (DOTALL: the bytes before it may be anything).
_LEGACY_LINE: Final = re.compile(rb"\n..[A-Z]", re.DOTALL)


def any_line_legacy_shaped(lines: bytes) -> bool:
    """`legacy_shaped` of any line of newline-joined rows.

    The batched read routes decode many rows with one `decode_lines`, which
    would read a row shaped both ways (a legacy key first, then every V1
    field) as V1, where the row check, sniffing it first, reads it as
    legacy. Any such line sends the whole batch row by row.
    """
    return lines[2:3].isupper() or _LEGACY_LINE.search(lines) is not None
