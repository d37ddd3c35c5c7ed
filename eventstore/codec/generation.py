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


def plain_lines(lines: bytes, count: int) -> bool:
    """True when newline-joined rows are exactly `count` lines (no row holds
    a newline) and no line is `legacy_shaped`: what lets the batched read
    routes decode them with one `decode_lines`.

    The same answer as `lines.count(b"\\n") == count - 1 and not
    any_line_legacy_shaped(lines)`, which counts byte by byte twice (about
    2.4k instructions per 300-byte row). The rows of one writer start alike
    (`{"type":"` from eventstore, `{"event_id":` from duroxide), so the first
    line's opening key, with a newline before it, is searched for as a whole
    (CPython skips ahead by its length) and removed; when the removed length
    says `count - 1` of them and no other newline is left (a `memchr`), every
    line starts with that key, whose third byte is not upper-case. About
    1.3k instructions per row; anything else takes the exact count.
    """
    end = lines.find(b'":', 2)
    if 2 < end <= 40 and not lines[2:3].isupper():
        opening = lines[: end + 2]
        if b"\n" not in opening:
            separator = b"\n" + opening
            rest = lines.replace(separator, b"")
            if len(lines) - len(rest) == (count - 1) * len(separator) and b"\n" not in rest:
                return True
    return lines.count(b"\n") == count - 1 and not any_line_legacy_shaped(lines)
