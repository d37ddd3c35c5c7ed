"""`plain_lines`, the batched read routes' proof that newline-joined rows are
one line each and none legacy-shaped, must answer exactly as counting the
newlines and sniffing every line does, whatever the rows hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.codec.generation import any_line_legacy_shaped, plain_lines

V1 = b'{"type":"ActivityScheduled","event_id":%d,"name":"W","input":"1"}'
DUROXIDE = b'{"event_id":%d,"source_event_id":null,"type":"ActivityScheduled"}'
LEGACY = b'{"ActivityScheduled":{"event_id":%d,"name":"W","input":"1"}}'


def _exact(lines: bytes, count: int) -> bool:
    return lines.count(b"\n") == count - 1 and not any_line_legacy_shaped(lines)


# Rows a store may hold: writers' rows, legacy rows, and hostile pieces that
# share the opening key (a newline inside a row, a blank row, a row holding
# two events, a row cut after its opening key).
_PIECES = [
    V1 % 1,
    V1 % 2,
    DUROXIDE % 3,
    LEGACY % 4,
    b"",
    b"\n",
    b" ",
    V1 % 5 + b"\n" + V1 % 6,
    b'{"type":',
    b'{"type":"\n"}',
    b'{"event_id":',
    b'{"type":"X"}\n{"ActivityScheduled":{}}',
    b'{"Type":"ActivityScheduled"}',
    b'\n{"type":"',
    b'{"type":"' * 3,
    b"{}",
    b'{"a":1}',
]


@settings(max_examples=3000)
@given(st.lists(st.sampled_from(_PIECES) | st.binary(max_size=30), min_size=1, max_size=8))
def test_plain_lines_answers_as_the_exact_count_and_sniff(rows: list[bytes]) -> None:
    joined = b"\n".join(rows)
    for count in (len(rows) - 1, len(rows), len(rows) + 1):
        assert plain_lines(joined, count) == _exact(joined, count)


def test_writers_rows_are_plain_and_hostile_ones_are_not() -> None:
    assert plain_lines(b"\n".join(V1 % n for n in range(1, 7)), 6)
    assert plain_lines(b"\n".join(DUROXIDE % n for n in range(1, 7)), 6)
    mixed = [V1 % 1, DUROXIDE % 2, V1 % 3]
    assert plain_lines(b"\n".join(mixed), 3)  # the exact count decides
    two_in_one = [V1 % 1, V1 % 2 + b"\n" + V1 % 3, b""]
    assert not plain_lines(b"\n".join(two_in_one), 3)
    legacy_later = [V1 % 1, LEGACY % 2, V1 % 3]
    assert not plain_lines(b"\n".join(legacy_later), 3)
