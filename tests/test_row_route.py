"""`Codec.decode_rows` (the read route row by row, with its inline V1 and
legacy loops) must read every execution exactly as the one row check reads
each of its rows: the same events, and the first bad row named with the same
index, message and kind."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import Codec
from eventstore import events as ev
from eventstore.codec import check_row
from eventstore.codec.generation import Generation
from eventstore.errors import RowDecodeError
from tests.reliability.test_hostile import CORRUPT, GOOD

APPLICATION = '{"Application":{"kind":"%s","message":"m","retryable":false}}'
SCHEDULED = '{"event_id":%d,"name":"W","input":"1"}'

# (event_type column, event_data with %d for the event id): legacy rows in
# their common shape and in every shape the inline loops must leave to the
# full dispatch, V1 rows, and damaged rows of both generations.
ROWS: list[tuple[str, str]] = [
    ("ActivityScheduled", '{"ActivityScheduled":' + SCHEDULED + "}"),
    ("ActivityScheduled", '{"ActivityScheduled":{"event_id":%d,"name":"W","input":"1","execution_id":7}}'),  # noqa: E501
    ("ActivityScheduled", '{"ActivityScheduled":{"event_id":%d,"name":"W","input":"1","instance_id":"z"}}'),  # noqa: E501
    ("ActivityScheduled", '{"ActivityScheduled": ' + SCHEDULED + " }"),
    ("ActivityScheduled", '{"ActivityScheduled":' + SCHEDULED + "} "),
    ("ActivityScheduled", '{"ActivityScheduled":' + SCHEDULED),
    ("ActivityScheduled", '{"ActivityScheduled":' + SCHEDULED + " "),
    ("ActivityScheduled", '{"ActivityScheduled":' + SCHEDULED + "x"),
    ("ActivityScheduled", '{"ActivityScheduled":' + SCHEDULED + "x}"),
    ("ActivityScheduled", '{"ActivityScheduled":' + SCHEDULED + ',"TimerFired":{"event_id":%d,"fire_at_ms":1}}'),  # noqa: E501
    ("ActivityScheduled", '{"\\u0041ctivityScheduled":' + SCHEDULED + "}"),
    ("ActivityScheduled", '{"ActivityScheduled":{}}'),
    ("ActivityScheduled", '{"ActivityScheduled":{"event_id":%d,"name":7,"input":"1"}}'),
    ("ActivityScheduled", '{"ActivityScheduled":{"event_id":%d,"name":"W","input":"1"},' + GOOD[1:]),  # noqa: E501
    ("TimerFired", '{"ActivityScheduled":' + SCHEDULED + "}"),
    ("Event", '{"ActivityScheduled":' + SCHEDULED + "}"),
    ("ActivityScheduledX", '{"ActivityScheduledX":' + SCHEDULED + "}"),
    ("FooBar", '{"FooBar":{"event_id":%d}}'),
    ("OrchestrationStarted", '{"OrchestrationStarted":{"event_id":%d,"name":"O","version":"1","input":"0"}}'),  # noqa: E501
    ("TimerFired", '{"TimerFired":{"event_id":%d,"source_event_id":1,"fire_at_ms":9}}'),
    ("ActivityFailed", '{"ActivityFailed":{"event_id":%d,"source_event_id":2,"details":' + APPLICATION % "ActivityFailed" + "}}"),  # noqa: E501
    ("OrchestrationFailed", '{"OrchestrationFailed":{"event_id":%d,"details":' + APPLICATION % "OrchestrationFailed" + "}}"),  # noqa: E501
    ("ActivityFailed", '{"ActivityFailed":{"event_id":%d,"source_event_id":2,"error":"boom"}}'),
    ("ActivityFailed", '{"ActivityFailed":{"event_id":%d,"source_event_id":2,"error":"boom","details":' + APPLICATION % "ActivityFailed" + "}}"),  # noqa: E501
    ("ActivityFailed", '{"ActivityFailed":{"event_id":%d,"source_event_id":2}}'),
    ("ActivityFailed", '{"ActivityFailed":{"event_id":%d,"source_event_id":2,"details":7}}'),
    ("ActivityScheduled", GOOD),
    ("ActivityScheduled", GOOD.replace('"instance_id":"i",', "")),
    ("ActivityScheduled", " " + GOOD),
    ("Event", GOOD),
    *((column, data.decode("utf-8", "replace")) for label, column, data in CORRUPT if label != "huge"),  # noqa: E501
]  # fmt: skip

_row = st.tuples(
    st.sampled_from(range(len(ROWS))),
    st.booleans(),  # bytes or text
    st.sampled_from([0, 0, 0, 1]),  # the event_id column off by one
)


def _rows(drawn: list[tuple[int, bool, int]]) -> list[tuple[int, str, bytes | str]]:
    rows: list[tuple[int, str, bytes | str]] = []
    for n, (which, as_bytes, off) in enumerate(drawn, start=1):
        column, data = ROWS[which]
        text = data.replace("%d", str(n)) if "%d" in data else data
        rows.append((n + off, column, text.encode() if as_bytes else text))
    return rows


def _one_by_one(codec: Codec, rows: list[tuple[int, str, bytes | str]]) -> Any:
    """What the one row check says of every row: the events, or the first error."""
    events = []
    for index, (event_id, event_type, data) in enumerate(rows):
        try:
            events.append(check_row(codec, "i", 1, event_id, event_type, data).event)
        except RowDecodeError as exc:
            return ("error", index, exc.message, exc.mismatch)
    return events


def _decode_rows(codec: Codec, rows: list[tuple[int, str, bytes | str]]) -> Any:
    try:
        return codec.decode_rows(rows, "i", 1)
    except RowDecodeError as exc:
        return ("error", exc.index, exc.message, exc.mismatch)


@settings(max_examples=400, deadline=None)
@given(st.lists(_row, min_size=1, max_size=8), st.booleans())
def test_decode_rows_reads_as_the_row_check(drawn: list[tuple[int, bool, int]], warm: bool) -> None:
    codec = Codec()
    rows = _rows(drawn)
    if warm:  # the legacy plans made first, so the inline loops take them
        _one_by_one(codec, rows)
    assert _decode_rows(codec, rows) == _one_by_one(Codec(), rows)
    assert _decode_rows(codec, rows) == _one_by_one(Codec(), rows)


@given(st.lists(st.sampled_from([0, 1, 2, 3, 18, 19, 20, 21]), min_size=1, max_size=6))
def test_every_legacy_loop_row_is_checked(kinds: list[int]) -> None:
    """A legacy execution whose rows all take the inline loop: identity from
    the row (the body's own execution_id and instance_id lose), types exact."""
    codec = Codec()
    rows = _rows([(k, True, 0) for k in kinds])
    _one_by_one(codec, rows)
    events = codec.decode_rows(rows, "i", 1)
    assert [(e.event_id, e.event_type, e.instance_id, e.execution_id) for e in events] == [
        (n, ROWS[k][0], "i", 1) for n, k in enumerate(kinds, start=1)
    ]


def test_a_registered_upcaster_is_used_by_the_inline_loops() -> None:
    codec = Codec()
    rows = _rows([(0, True, 0), (0, True, 0), (20, True, 0)])
    assert codec.decode_rows(rows, "i", 1)[0].name == "W"  # type: ignore[union-attr]

    def renamed(value: ev.ActivityScheduled, context: Any) -> ev.ActivityScheduled:
        return msgspec.structs.replace(
            value, name="renamed", instance_id=context.instance_id, execution_id=1
        )

    def failed(value: Any, context: Any) -> ev.ActivityFailed:
        return ev.ActivityFailed(
            event_id=value.event_id,
            source_event_id=value.source_event_id,
            instance_id="i",
            execution_id=1,
            details=ev.ApplicationError(kind="ActivityFailed", message="new", retryable=True),
        )

    codec.registry.register("ActivityScheduled", Generation.V0B, Generation.V1, typed=True)(renamed)
    codec.registry.register("ActivityFailed", Generation.V0B, Generation.V1, typed=True)(failed)
    events = codec.decode_rows(rows, "i", 1)
    assert [e.name for e in events[:2]] == ["renamed", "renamed"]  # type: ignore[union-attr]
    assert events[2].details.message == "new"  # type: ignore[union-attr]
    assert events == _one_by_one(codec, rows)
