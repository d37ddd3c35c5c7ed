"""Golden tests: every row of the real duroxide database and of the legacy files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore import DecodeError, Generation, decode, detect_version, encode
from eventstore import events as ev
from tests.conftest import DUROXIDE_JSONL, FIXTURES, V0A_JSONL, V0B_JSONL

MIXED_JSONL = FIXTURES / "legacy" / "mixed-history.jsonl"


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def key(row: dict[str, Any]) -> tuple[str, int, int]:
    return (row["instance_id"], row["execution_id"], row["event_id"])


def decode_row(row: dict[str, Any]) -> ev.Event:
    return decode(
        row["event_data"], instance_id=row["instance_id"], execution_id=row["execution_id"]
    )


@pytest.mark.parametrize("path", [DUROXIDE_JSONL, V0A_JSONL, V0B_JSONL, MIXED_JSONL])
def test_every_fixture_row_decodes_with_its_ids_and_type(path: Path) -> None:
    fixture = rows(path)
    assert len(fixture) > 100
    for row in fixture:
        event = decode_row(row)
        assert not isinstance(event, ev.UnknownEvent), row
        assert (event.instance_id, event.execution_id, event.event_id) == key(row)
        assert event.event_type == row["event_type"]
        assert type(event).__name__ == row["event_type"]


def test_v1_timestamps_and_versions_come_from_the_rows() -> None:
    for row in rows(DUROXIDE_JSONL):
        raw = json.loads(row["event_data"])
        event = decode_row(row)
        assert event.timestamp_ms == raw["timestamp_ms"] > 0
        assert event.has_timestamp
        assert event.duroxide_version == "0.1.32"
        assert event.source_event_id == raw["source_event_id"]


@pytest.mark.parametrize("path", [V0A_JSONL, V0B_JSONL])
def test_legacy_rows_have_no_timestamp_and_no_version(path: Path) -> None:
    for row in rows(path):
        event = decode_row(row)
        assert event.timestamp_ms == 0
        assert not event.has_timestamp
        assert event.duroxide_version == ""


def test_every_v1_row_of_the_real_database_reencodes_equal() -> None:
    for row in rows(DUROXIDE_JSONL):
        assert json.loads(encode(decode_row(row))) == json.loads(row["event_data"]), row


def test_the_sqlite_database_matches_the_jsonl_rows(duroxide_db: Path) -> None:
    con = sqlite3.connect(duroxide_db)
    stored = {
        (r[0], r[1], r[2]): r[3]
        for r in con.execute("SELECT instance_id, execution_id, event_id, event_data FROM history")
    }
    assert len(stored) == 154
    for row in rows(DUROXIDE_JSONL):
        assert stored[key(row)] == row["event_data"]
        assert json.loads(encode(decode(stored[key(row)]))) == json.loads(row["event_data"])


def test_legacy_events_match_their_v1_originals_in_content() -> None:
    """V0 -> V1 keeps every field V0 had; only what V0 lacked is defaulted."""
    originals = {key(r): decode_row(r) for r in rows(DUROXIDE_JSONL)}
    for path in (V0A_JSONL, V0B_JSONL):
        for row in rows(path):
            legacy = decode_row(row)
            if isinstance(legacy, ev.SystemCall):
                continue
            original = originals[key(row)]
            assert type(legacy) is type(original)
            stripped = eventstore.events.UNSET
            for name in legacy.__struct_fields__:
                if name in ("timestamp_ms", "duroxide_version"):
                    continue
                mine, theirs = getattr(legacy, name), getattr(original, name)
                if name == "details":
                    assert mine.message == theirs.message or mine.message.startswith("canceled")
                    continue
                if mine is stripped:  # optional fields V0 did not have
                    continue
                assert mine == theirs, (name, row)


def test_v0a_error_string_becomes_application_details() -> None:
    failures = [decode_row(r) for r in rows(V0A_JSONL) if r["event_type"].endswith("Failed")]
    assert failures
    for event in failures:
        details = event.details  # type: ignore[union-attr]
        assert isinstance(details, ev.ApplicationError)
        assert details.retryable is False
        expected_kind = (
            "ActivityFailed" if isinstance(event, ev.ActivityFailed) else "OrchestrationFailed"
        )
        assert details.kind == expected_kind


def test_detect_version_names_each_generation() -> None:
    assert {detect_version(r["event_data"]) for r in rows(DUROXIDE_JSONL)} == {Generation.V1}
    v0a = {r["event_type"]: detect_version(r["event_data"]) for r in rows(V0A_JSONL)}
    v0b = {r["event_type"]: detect_version(r["event_data"]) for r in rows(V0B_JSONL)}
    assert v0a["ActivityFailed"] is Generation.V0A
    assert v0a["OrchestrationFailed"] is Generation.V0A
    assert v0b["ActivityFailed"] is Generation.V0B
    assert v0a["ActivityScheduled"] is Generation.V0 is v0b["ActivityScheduled"]
    with pytest.raises(DecodeError):
        detect_version(b"not json")


def test_mixed_histories_switch_generation_within_an_execution() -> None:
    by_execution: dict[tuple[str, int], set[str]] = {}
    for row in rows(MIXED_JSONL):
        generation = detect_version(row["event_data"])
        by_execution.setdefault((row["instance_id"], row["execution_id"]), set()).add(
            "V1" if generation is Generation.V1 else "V0"
        )
        decode_row(row)
    assert any(len(g) == 2 for g in by_execution.values())


# -- the untagged layer's edges ----------------------------------------------


def test_v1_without_timestamp_reads_as_zero_and_unknown_fields_are_ignored() -> None:
    event = decode(
        b'{"event_id":3,"source_event_id":2,"instance_id":"i","execution_id":1,'
        b'"duroxide_version":"9.9.9","type":"ActivityCompleted","result":"1",'
        b'"worker_id":"w-7","trace_id":{"nested":[1,2,{"x":null}]}}'
    )
    assert isinstance(event, ev.ActivityCompleted)
    assert event.timestamp_ms == 0 and not event.has_timestamp
    assert event.result == "1"


def test_unknown_type_is_kept_verbatim() -> None:
    raw = (
        b'{"event_id":9,"source_event_id":null,"instance_id":"i","execution_id":2,'
        b'"timestamp_ms":5,"duroxide_version":"0.2.0","type":"ActivityHeartbeat","beat":3}'
    )
    event = decode(raw)
    assert isinstance(event, ev.UnknownEvent)
    assert event.event_type == "ActivityHeartbeat"
    assert (event.event_id, event.execution_id, event.timestamp_ms) == (9, 2, 5)
    assert encode(event) == raw


def test_unknown_legacy_type_is_kept_verbatim() -> None:
    raw = '{"FutureThing":{"event_id":4,"x":1}}'
    event = decode(raw, instance_id="i", execution_id=3)
    assert isinstance(event, ev.UnknownEvent)
    assert event.event_type == "FutureThing"
    assert (event.instance_id, event.execution_id, event.event_id) == ("i", 3, 4)
    assert encode(event) == raw.encode()


@pytest.mark.parametrize(
    "details",
    [
        {
            "Application": {
                "kind": {"Cancelled": {"reason": "stop"}},
                "message": "",
                "retryable": False,
            }
        },
        {"Application": {"kind": "Panicked", "message": "p", "retryable": False}},
        {"Application": {"kind": {"Timeout": {"after_ms": 5}}, "message": "t", "retryable": True}},
        {"Infrastructure": {"operation": "fetch", "message": "m", "retryable": True}},
        {"Configuration": {"kind": "Nondeterminism", "resource": "Order", "message": None}},
        {"Configuration": {"kind": "UnregisteredActivity", "resource": "A", "message": "x"}},
        {
            "Configuration": {
                "kind": {"MissingVersion": {"requested_version": "2"}},
                "resource": "O",
                "message": None,
            }
        },
        {"Configuration": {"kind": {"SomethingNew": [1, 2]}, "resource": "O", "message": None}},
        {
            "Poison": {
                "attempt_count": 5,
                "max_attempts": 5,
                "message_type": {"Orchestration": {"instance": "i", "execution_id": 1}},
                "message": "m",
            }
        },
        {
            "Poison": {
                "attempt_count": 1,
                "max_attempts": 3,
                "message_type": {
                    "Activity": {
                        "instance": "i",
                        "execution_id": 1,
                        "activity_name": "A",
                        "activity_id": 7,
                    }
                },
                "message": "m",
            }
        },
        {
            "Poison": {
                "attempt_count": 1,
                "max_attempts": 3,
                "message_type": {
                    "FailedDeserialization": {"instance": "i", "execution_id": 1, "error": "e"}
                },
                "message": "m",
            }
        },
        {
            "Poison": {
                "attempt_count": 1,
                "max_attempts": 3,
                "message_type": {"Timer": {"id": 1}},
                "message": "m",
            }
        },
        {"Quota": {"limit": 10}},
    ],
)
def test_every_error_details_variant_round_trips(details: dict[str, Any]) -> None:
    raw = {
        "event_id": 4,
        "source_event_id": 3,
        "instance_id": "i",
        "execution_id": 1,
        "timestamp_ms": 10,
        "duroxide_version": "0.1.32",
        "type": "ActivityFailed",
        "details": details,
    }
    event = decode(json.dumps(raw))
    assert isinstance(event, ev.ActivityFailed)
    assert json.loads(encode(event)) == raw
    (variant,) = details
    if variant == "Quota":
        assert isinstance(event.details, ev.UnknownErrorDetails)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "JSON"),
        (b"{", "JSON"),
        (b"[1,2]", "object"),
        (b'{"event_id":1}', "type"),
        (b'{"event_id":"1","type":"ActivityCompleted","result":"x"}', "event_id"),
        (b'{"event_id":1,"type":"ActivityCompleted"}', "result"),
        (b'{"event_id":-1,"type":"ActivityCompleted","result":"x"}', "event_id"),
        (b'{"event_id":99999999999999999999,"type":"ActivityCompleted","result":"x"}', "event_id"),
        (b'{"event_id":1,"type":7}', "type"),
        (b'{"ActivityScheduled":{"event_id":1}}', "name"),
        (b'{"ActivityScheduled":{"event_id":1,"name":"a","input":"b"},"Extra":{}}', "Extra"),
        (b'{"ActivityFailed":{"event_id":1,"source_event_id":1}}', "error"),
        (b'{"event_id":1,"type":"ActivityFailed","details":{"A":{},"B":{}}}', "variant"),
        (b'{"event_id":1,"type":"ActivityFailed","details":"boom"}', "variant"),
        (b"\xff\xfe", "JSON"),
        (b'{"event_id":NaN,"type":"ActivityCompleted","result":"x"}', "JSON"),
    ],
)
def test_invalid_data_raises_decode_error_saying_what(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(data)
    assert reason.lower() in str(caught.value).lower()


def test_size_limit_is_enforced_on_decode() -> None:
    codec = eventstore.Codec(max_event_bytes=100)
    payload = "x" * 200
    with pytest.raises(DecodeError, match="exceeds the limit"):
        codec.decode(json.dumps({"event_id": 1, "type": "ActivityCompleted", "result": payload}))


def test_str_and_bytes_decode_alike_including_odd_whitespace() -> None:
    legacy = ' { "TimerFired" : {"event_id": 5, "source_event_id": 4, "fire_at_ms": 7} } '
    from_str = decode(legacy, instance_id="i", execution_id=1)
    from_bytes = decode(legacy.encode(), instance_id="i", execution_id=1)
    assert (
        from_str
        == from_bytes
        == ev.TimerFired(
            event_id=5, source_event_id=4, instance_id="i", execution_id=1, fire_at_ms=7
        )
    )


def test_system_call_encodes_v1_shaped_and_reads_back() -> None:
    event = decode(
        '{"SystemCall":{"event_id":5,"op":"new_guid","value":"g","execution_id":1}}',
        instance_id="p",
        execution_id=1,
    )
    assert isinstance(event, ev.SystemCall)
    wire = json.loads(encode(event))
    assert wire["type"] == "SystemCall"
    assert wire["duroxide_version"] == ""
    assert wire["op"] == "new_guid" and wire["value"] == "g"
    assert decode(encode(event)) == event


def test_encode_writes_null_and_omits_exactly_as_duroxide() -> None:
    started = ev.OrchestrationStarted(
        event_id=1, instance_id="i", execution_id=1, name="O", version="1.0.0", input="0"
    )
    wire = json.loads(encode(started))
    assert wire["parent_instance"] is None and wire["parent_id"] is None
    assert wire["source_event_id"] is None
    for optional in ("parent_execution_id", "carry_forward_events", "initial_custom_status"):
        assert optional not in wire
    scheduled = json.loads(encode(ev.ActivityScheduled(event_id=2, name="a", input="1")))
    assert "session_id" not in scheduled and "tag" not in scheduled
    tagged = json.loads(
        encode(ev.ActivityScheduled(event_id=2, name="a", input="1", session_id="s", tag="gpu"))
    )
    assert tagged["session_id"] == "s" and tagged["tag"] == "gpu"
    cleared = json.loads(encode(ev.CustomStatusUpdated(event_id=3, status=None)))
    assert "status" in cleared and cleared["status"] is None


def test_legacy_shape_of_a_type_only_v1_named_decodes_typed() -> None:
    raw = '{"CustomStatusUpdated":{"event_id":3,"status":"half"}}'
    event = decode(raw, instance_id="i", execution_id=2)
    assert event == ev.CustomStatusUpdated(
        event_id=3, instance_id="i", execution_id=2, status="half"
    )
    assert detect_version(raw) is Generation.V0


def test_a_v1_row_without_identity_takes_it_from_the_row(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    eventstore.open(str(path)).close()
    con = sqlite3.connect(path)
    for event_id, data in (
        (1, '{"event_id":1,"type":"OrchestrationStarted","name":"O","version":"1","input":"0"}'),
        (2, '{"event_id":2,"timestamp_ms":9,"type":"ActivityScheduled","name":"A","input":"1"}'),
    ):
        con.execute(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES ('bare', 3, ?, ?, ?)",
            (event_id, json.loads(data)["type"], data),
        )
    con.commit()
    con.close()
    from eventstore.store.verify import verify

    with eventstore.open(str(path), readonly=True) as store:
        events = store.read("bare")
        assert [(e.instance_id, e.execution_id) for e in events] == [("bare", 3), ("bare", 3)]
        assert [(r.instance_id, r.event.execution_id) for r in store.read_all()] == [
            ("bare", 3),
            ("bare", 3),
        ]
        assert verify(store).ok
