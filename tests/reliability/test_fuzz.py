"""Fuzzing the decoder and append's validation with hypothesis.

CI runs a few thousand examples; `make soak` (EVENTSTORE_SOAK=1) runs 100k+.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventstore
from eventstore import DecodeError, ValidationError
from eventstore import events as ev
from tests.conftest import DUROXIDE_JSONL, V0A_JSONL, V0B_JSONL

SOAK = os.environ.get("EVENTSTORE_SOAK") == "1"
EXAMPLES = 60_000 if SOAK else 1_500
TRIED = {"decode": 0, "append": 0}


def teardown_module() -> None:
    out = os.environ.get("EVENTSTORE_SOAK_REPORT")
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(
                f"fuzz: {TRIED['decode']} decoder examples, {TRIED['append']} append examples,"
                " only DecodeError / ValidationError raised\n"
            )


ROWS = [
    json.loads(line)["event_data"].encode()
    for path in (DUROXIDE_JSONL, V0A_JSONL, V0B_JSONL)
    for line in path.read_text(encoding="utf-8").splitlines()
]

fuzz = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


INSERTIONS = [
    b"{",
    b"}",
    b"[",
    b'"',
    b"\\",
    b",",
    b":",
    b"\xff",
    b"null",
    b"1e999",
    b"-1",
    b"NaN",
    b"\x00",
]


@st.composite
def mutated_rows(draw: st.DrawFn) -> bytes:
    """A real stored row with a few random byte-level edits."""
    data = bytearray(draw(st.sampled_from(ROWS)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.sampled_from(INSERTIONS))
        elif action == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.sampled_from(ROWS))[: draw(st.integers(0, 40))]
    return bytes(data)


@fuzz
@given(mutated_rows())
def test_mutated_rows_decode_or_raise_decode_error(data: bytes) -> None:
    TRIED["decode"] += 1
    try:
        event = eventstore.decode(data, instance_id="i", execution_id=1)
    except DecodeError:
        return
    # Whatever decodes must encode, and read back the same.
    assert eventstore.decode(eventstore.encode(event), instance_id="i", execution_id=1) == event


@fuzz
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_arbitrary_input_raises_only_decode_error(data: bytes | str) -> None:
    TRIED["decode"] += 1
    with contextlib.suppress(DecodeError):
        eventstore.decode(data)


anything: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.binary(max_size=10), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)  # fmt: skip


@settings(
    max_examples=EXAMPLES // 3, deadline=None, suppress_health_check=list(HealthCheck),
    database=None,
)  # fmt: skip
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(ev.EVENT_TYPES)), st.dictionaries(
            st.sampled_from(["event_id", "source_event_id", "timestamp_ms", "name", "input",
                             "result", "tag", "session_id", "fire_at_ms", "status", "key",
                             "value", "details", "output", "reason", "data", "op"]),
            anything, max_size=4)),
        min_size=1, max_size=5,
    )
)  # fmt: skip
def test_append_accepts_valid_or_refuses_with_validation_error(
    specs: list[tuple[str, dict[str, Any]]],
) -> None:
    TRIED["append"] += 1
    with eventstore.open(":memory:") as store:
        store.append(
            "i", 1, [ev.OrchestrationStarted(event_id=1, name="o", version="1", input="0")]
        )
        written = 1
        for event_id, (type_name, fields) in enumerate(specs, start=2):
            cls = ev.EVENT_TYPES[type_name]
            try:
                event = cls(**{"event_id": event_id, **fields})
            except TypeError:
                continue  # missing required arguments: not an event at all
            try:
                store.append("i", 1, [event])
            except ValidationError:
                continue
            written += 1
        # Everything stored reads back, and nothing refused was stored.
        events = store.read("i")
        assert len(events) == written == store.count()
