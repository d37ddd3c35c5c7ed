"""Corrupt rows, hostile input and injection attempts: clear errors, nothing lost."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventstore
from eventstore import DecodeError, InvalidEventError
from eventstore import events as ev
from eventstore.cli import main
from eventstore.store.verify import verify
from tests.conftest import StoreFactory

GOOD = '{"event_id":%d,"source_event_id":null,"instance_id":"i","execution_id":1,"timestamp_ms":5,"duroxide_version":"0.1.32","type":"ActivityScheduled","name":"W","input":"1"}'  # noqa: E501

# (label, event_type column, event_data): every kind of damage the issue names.
CORRUPT: list[tuple[str, str, bytes]] = [
    ("not JSON", "ActivityScheduled", b"<html>oops</html>"),
    ("truncated", "ActivityScheduled", GOOD.encode()[:60]),
    ("wrong types", "ActivityScheduled", GOOD.replace('"name":"W"', '"name":7').encode()),
    (
        "id beyond 64 bits",
        "ActivityScheduled",
        GOOD.replace('"event_id":%d', '"event_id":99999999999999999999999').encode(),
    ),
    (
        "deeply nested",
        "ActivityScheduled",
        GOOD.replace('"input":"1"', '"input":"1","x":' + "[" * 50_000 + "]" * 50_000).encode(),
    ),
    (
        "invalid UTF-8",
        "ActivityScheduled",
        GOOD.replace('"W"', '"\\u0057"').encode().replace(b"\\u0057", b"\xff\xfe"),
    ),
    ("NaN", "ActivityScheduled", GOOD.replace('"timestamp_ms":5', '"timestamp_ms":NaN').encode()),
    ("type column disagrees", "TimerFired", GOOD.encode()),
    (
        "huge",
        "ActivityScheduled",
        GOOD.replace('"input":"1"', '"input":"' + "x" * 2_000_000 + '"').encode(),
    ),
]


START_V1 = '{"event_id":1,"source_event_id":null,"instance_id":"i","execution_id":1,"timestamp_ms":5,"duroxide_version":"0.1.32","type":"OrchestrationStarted","name":"O","version":"1","input":"0"}'  # noqa: E501


def _fill(
    path: Path, duplicate_keys: bool = True, legacy_start: bool = True
) -> list[tuple[str, int]]:
    """A store with good rows around one corrupt row of each kind (plus duplicate keys);
    instance "i" starts with a legacy V0 row unless not `legacy_start`."""
    eventstore.open(str(path)).close()
    con = sqlite3.connect(path, isolation_level=None)
    insert = (
        "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
        " VALUES (?, ?, ?, ?, CAST(? AS TEXT))"
    )
    start = '{"OrchestrationStarted":{"event_id":1,"name":"O","version":"1","input":"0"}}'
    if not legacy_start:
        start = START_V1
    # Another instance first, so that positions differ from event ids.
    other = start.replace('"instance_id":"i"', '"instance_id":"other"')
    con.execute(
        insert.replace("CAST(? AS TEXT)", "?"), ("other", 1, 1, "OrchestrationStarted", other)
    )
    con.execute(insert.replace("CAST(? AS TEXT)", "?"), ("i", 1, 1, "OrchestrationStarted", start))
    bad: list[tuple[str, int]] = []
    event_id = 2
    for label, event_type, data in CORRUPT:
        con.execute(insert.replace("CAST(? AS TEXT)", "?"), ("i", 1, event_id, "ActivityScheduled",
                    GOOD % event_id))  # fmt: skip
        event_id += 1
        body = data.replace(b"%d", str(event_id).encode())
        con.execute(insert, ("i", 1, event_id, event_type, body))
        bad.append((label, event_id))
        event_id += 1
    if duplicate_keys:
        dup = GOOD.replace('"event_id":%d', f'"event_id":{event_id},"event_id":{event_id}')
        con.execute(
            insert.replace("CAST(? AS TEXT)", "?"), ("i", 1, event_id, "ActivityScheduled", dup)
        )
        bad.append(("duplicate keys", event_id))
        event_id += 1
    con.execute(insert.replace("CAST(? AS TEXT)", "?"), ("i", 1, event_id, "ActivityScheduled",
                GOOD % event_id))  # fmt: skip
    con.close()
    return bad


@pytest.mark.parametrize(("label", "event_type", "data"), CORRUPT, ids=[c[0] for c in CORRUPT])
def test_decode_raises_only_decode_error(label: str, event_type: str, data: bytes) -> None:
    codec = eventstore.Codec(max_event_bytes=1_000_000)
    try:
        event = codec.decode(data.replace(b"%d", b"3"), instance_id="i", execution_id=1)
    except DecodeError as exc:
        assert str(exc)
        return
    assert label == "type column disagrees"  # valid JSON: only the column is wrong
    assert event.event_type != event_type


def test_read_names_the_corrupt_row_and_verify_lists_every_one(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    bad = _fill(path)
    with eventstore.open(str(path), codec=eventstore.Codec(max_event_bytes=1_000_000)) as store:
        with pytest.raises(DecodeError) as caught:
            store.read("i")
        first_bad = bad[0][1]
        position = store.backend.position_of("i", 1, first_bad)
        assert position is not None and position != first_bad  # a row of "other" comes first
        assert f"instance 'i', execution 1, event {first_bad}, position {position}:" in str(
            caught.value
        )
        report = verify(store)
    found = {p.location.event_id for p in report.problems}
    assert found == {event_id for _, event_id in bad}, report.problems
    assert all(p.location.position is not None for p in report.problems)


@pytest.mark.parametrize("legacy_start", [True, False], ids=["legacy", "v1"])
def test_export_skip_corrupt_exports_the_rest_and_quarantines(
    tmp_path: Path, legacy_start: bool
) -> None:
    path = tmp_path / "corrupt.db"
    bad = _fill(path, duplicate_keys=False, legacy_start=legacy_start)
    out = tmp_path / "out.jsonl"
    quarantine = tmp_path / "bad.jsonl"
    result = CliRunner().invoke(
        main,
        ["export", str(path), "-o", str(out), "--skip-corrupt", "--quarantine", str(quarantine)],
    )
    assert result.exit_code == 0, result.output
    kept = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    held = [json.loads(line) for line in quarantine.read_text(encoding="utf-8").splitlines()]
    # "huge" is within the default 16 MiB limit, so only the rest are corrupt here.
    assert {r["event_id"] for r in held} == {e for label, e in bad if label != "huge"}
    assert all(r["error"] for r in held)
    total = sqlite3.connect(path).execute("SELECT COUNT(*) FROM history").fetchone()[0]
    assert len(kept) + len(held) == total
    # The healthy rows import cleanly elsewhere, and verify there names each
    # gap a quarantined row left: rows are missing from that store. In an
    # execution holding legacy data the gaps are tolerated (legacy_gaps), as
    # in any legacy history; in a V1 execution they are problems, and nothing
    # else is.
    with eventstore.open(str(tmp_path / "clean.db")) as clean:
        assert clean.import_rows(kept).inserted == len(kept)
        report = verify(clean)
    gaps = report.legacy_gaps if legacy_start else report.problems
    assert report.ok is legacy_start, report.problems
    assert all(g.kind == "gap" for g in gaps)
    assert {int(g.message.split()[4]) for g in gaps} == {r["event_id"] for r in held}, gaps
    # Without --skip-corrupt the export is verbatim and complete.
    plain = CliRunner().invoke(main, ["export", str(path)])
    assert plain.exit_code == 0, plain.output
    assert len(plain.stdout.splitlines()) == total
    # ... and says on stderr which of the rows it wrote will not import.
    assert f"warning: {len(held)} exported rows will not import" in plain.stderr


@pytest.mark.parametrize(
    "hostile",
    [
        "'; DROP TABLE history; --",
        'x" OR 1=1 --',
        "Robert'); DELETE FROM history WHERE ('1'='1",
        "\x00nul\x00",
        "emoji 🙂 and \u2028 line sep",
        "%s %d {0} $1 ?",
        "a" * 10_000,
    ],
)
def test_hostile_strings_are_data_everywhere(store_factory: StoreFactory, hostile: str) -> None:
    store = store_factory()
    started = ev.OrchestrationStarted(
        event_id=1, name=hostile, version=hostile, input=json.dumps(hostile)
    )
    if "\x00" in hostile:  # no backend stores NUL in an id (PostgreSQL cannot)
        with pytest.raises(InvalidEventError, match="NUL"):
            store.append(hostile, 1, [started])
        hostile = hostile.replace("\x00", "")
        started = ev.OrchestrationStarted(event_id=1, name="\x00", version="1", input='"\u0000"')
    store.append(hostile, 1, [started, ev.ActivityScheduled(event_id=2, name=hostile, input="1")])
    store.append(
        "neighbour", 1, [ev.OrchestrationStarted(event_id=1, name="n", version="1", input="0")]
    )
    events = store.read(hostile)
    assert [e.event_id for e in events] == [1, 2]
    assert events[0] == next(iter(store.read_all())).event
    assert events[0].instance_id == hostile
    if started.name == "\x00":
        assert (events[0].name, events[0].input) == ("\x00", '"\x00"')
    else:
        assert events[0].name == events[0].version == hostile
        assert json.loads(events[0].input) == hostile
    assert events[1].name == hostile
    assert store.instances() == sorted([hostile, "neighbour"])
    assert store.count() == 3
    assert [r.event.event_id for r in store.read_all()] == [1, 2, 1]


def _deeply_nested() -> object:
    deep: object = []
    for _ in range(100_000):
        deep = [deep]
    return deep


BAD_EVENTS = {
    "bytes in a str field": lambda: ev.ActivityScheduled(event_id=2, name="a", input=b"bytes"),  # type: ignore[arg-type]
    "int in a str field": lambda: ev.ActivityScheduled(event_id=2, name="a", input="1", tag=5),  # type: ignore[arg-type]
    "id beyond 64 bits": lambda: ev.ActivityScheduled(event_id=2**64, name="a", input="1"),
    "NaN timestamp": lambda: ev.ActivityScheduled(event_id=2, name="a", input="1", timestamp_ms=float("nan")),  # type: ignore[arg-type]  # noqa: E501
    "deeply nested": lambda: ev.ActivityFailed(event_id=2, details=ev.UnknownErrorDetails(name="X", value=_deeply_nested())),  # noqa: E501
    "oversized": lambda: ev.ActivityScheduled(event_id=2, name="a", input="x" * (17 * 1024 * 1024)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_EVENTS))
def test_bad_append_input_writes_nothing(store_factory: StoreFactory, case: str) -> None:
    store = store_factory()
    store.append("i", 1, [ev.OrchestrationStarted(event_id=1, name="o", version="1", input="0")])
    with pytest.raises(InvalidEventError):
        store.append("i", 1, [BAD_EVENTS[case]()])
    assert store.count() == 1
