"""`eventstore traces`: stored histories as OpenTelemetry traces, written as OTLP
JSON and sent over OTLP/HTTP to a receiver on loopback that decodes the
protobuf with opentelemetry-proto."""

from __future__ import annotations

import base64
import http.server
import json
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.traces import TraceStream, encode_request, span_id, trace_id
from tests.conftest import V0A_JSONL

T0 = 1_795_000_000_000
BOOM = ev.ApplicationError(kind="ActivityFailed", message="card declined", retryable=False)


def order_history() -> list[ev.Event]:
    return [
        ev.OrchestrationStarted(
            event_id=1,
            name="Order",
            version="2.0.0",
            input="{}",
            timestamp_ms=T0,
            worker_id="w-1",
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        ev.ActivityScheduled(
            event_id=2,
            name="Charge",
            input="1",
            timestamp_ms=T0 + 10,
            retry_count=2,
            scheduled_by_worker_id="w-1",
        ),
        ev.ActivityScheduled(
            event_id=3, name="__duroxide_syscall:new_guid", input="", timestamp_ms=T0 + 11
        ),
        ev.ActivityCompleted(event_id=4, source_event_id=3, result="g", timestamp_ms=T0 + 11),
        ev.TimerCreated(event_id=5, fire_at_ms=T0 + 500, timestamp_ms=T0 + 12),
        ev.ExternalSubscribed(event_id=6, name="Approve", timestamp_ms=T0 + 13),
        ev.SubOrchestrationScheduled(
            event_id=7, name="Ship", instance="sub::7", input="x", timestamp_ms=T0 + 14
        ),
        ev.ActivityFailed(
            event_id=8,
            source_event_id=2,
            details=BOOM,
            timestamp_ms=T0 + 260,
            completed_by_worker_id="w-2",
        ),
        ev.ExternalEvent(event_id=9, name="Approve", data="yes", timestamp_ms=T0 + 300),
        ev.TimerFired(event_id=10, source_event_id=5, fire_at_ms=T0 + 500, timestamp_ms=T0 + 501),
        ev.SubOrchestrationCompleted(
            event_id=11, source_event_id=7, result="ok", timestamp_ms=T0 + 900
        ),
        ev.ActivityScheduled(event_id=12, name="Never", input="", timestamp_ms=T0 + 901),
        ev.OrchestrationFailed(
            event_id=13,
            details=ev.ApplicationError(
                kind="OrchestrationFailed", message="gave up", retryable=False
            ),
            timestamp_ms=T0 + 1000,
        ),
    ]


def child_history() -> list[ev.Event]:
    return [
        ev.OrchestrationStarted(
            event_id=1,
            name="Ship",
            version="1.0.0",
            input="x",
            parent_instance="order-1",
            parent_id=7,
            parent_execution_id=1,
            timestamp_ms=T0 + 20,
        ),
        ev.OrchestrationCompleted(event_id=2, output="ok", timestamp_ms=T0 + 880),
    ]


@pytest.fixture
def order_db(tmp_path: Path) -> Path:
    path = tmp_path / "orders.db"
    with eventstore.open(str(path)) as store:
        store.append("order-1::sub::7", 1, child_history())
        store.append("order-1", 1, order_history())
    return path


def spans_of(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    return [
        span
        for line in lines
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]


def attrs(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}


def test_a_trace_per_instance_a_span_per_execution_and_what_it_did(
    order_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "t.jsonl"
    result = CliRunner().invoke(main, ["traces", str(order_db), "-o", str(out)])
    assert result.exit_code == 0, result.output
    spans = spans_of(out)
    by_name = {s["name"]: s for s in spans}
    order = by_name["orchestration Order"]
    assert order["traceId"] == trace_id("order-1").hex()
    assert order["spanId"] == span_id("order-1", 1).hex() and "parentSpanId" not in order
    assert order["startTimeUnixNano"] == str(T0 * 1_000_000)
    assert order["endTimeUnixNano"] == str((T0 + 1000) * 1_000_000)
    assert order["status"] == {"code": 2, "message": "gave up"}
    assert attrs(order)["duroxide.worker_id"] == "w-1"
    assert attrs(order)["duroxide.trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert attrs(order)["duroxide.orchestration.status"] == "Failed"

    charge = by_name["activity Charge"]
    assert charge["parentSpanId"] == order["spanId"]
    assert charge["spanId"] == span_id("order-1", 1, 2).hex()
    assert int(charge["endTimeUnixNano"]) - int(charge["startTimeUnixNano"]) == 250 * 1_000_000
    assert charge["status"] == {"code": 2, "message": "card declined"}
    a = attrs(charge)
    assert a["error.type"] == "Application" and a["duroxide.outcome"] == "app_error"
    assert a["duroxide.retry_count"] == "2"  # intValue: a decimal string in OTLP JSON
    assert a["duroxide.scheduled_by_worker_id"] == "w-1"

    assert by_name["timer"]["status"] == {"code": 1}
    assert int(by_name["timer"]["endTimeUnixNano"]) == (T0 + 501) * 1_000_000
    wait = by_name["external Approve"]
    assert int(wait["startTimeUnixNano"]) == (T0 + 13) * 1_000_000
    assert int(wait["endTimeUnixNano"]) == (T0 + 300) * 1_000_000

    ship = by_name["suborchestration Ship"]
    child = by_name["orchestration Ship"]
    assert ship["links"][0]["traceId"] == child["traceId"] == trace_id("order-1::sub::7").hex()
    assert ship["links"][0]["spanId"] == child["spanId"]
    assert child["links"][0]["traceId"] == order["traceId"]
    assert child["links"][0]["spanId"] == ship["spanId"]  # back to the parent's span
    assert child["status"] == {"code": 1}

    assert not any("syscall" in s["name"] or "Never" in s["name"] for s in spans)
    assert len(spans) == 6
    assert "6 spans of 2 executions in 2 traces" in result.output
    assert "1 unfinished" in result.output


def test_two_exports_agree_byte_for_byte_whatever_the_commit_order(
    order_db: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    with eventstore.open(str(other)) as store:  # the other order of appends
        store.append("order-1", 1, order_history())
        store.append("order-1::sub::7", 1, child_history())
    outputs = []
    for n, db in enumerate((order_db, order_db, other)):
        out = tmp_path / f"{n}.jsonl"
        result = CliRunner().invoke(main, ["traces", str(db), "-o", str(out), "--batch", "3"])
        assert result.exit_code == 0, result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0].splitlines()) == 2  # a request per line, batched by execution


def test_events_without_timestamps_make_no_spans_and_are_counted(tmp_path: Path) -> None:
    target = tmp_path / "legacy.db"
    runner = CliRunner()
    assert runner.invoke(main, ["import", str(target), str(V0A_JSONL)]).exit_code == 0
    rows = len(V0A_JSONL.read_text().splitlines())
    out = tmp_path / "t.jsonl"
    result = runner.invoke(main, ["traces", str(target), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == ""
    assert f"{rows} events without a timestamp" in result.output
    assert "0 spans of" in result.output


def test_the_real_duroxide_database(duroxide_db: Path, tmp_path: Path) -> None:
    """Each activity span spans exactly its scheduled and completed rows' timestamps,
    computed here from the raw JSON."""
    out = tmp_path / "t.jsonl"
    result = CliRunner().invoke(main, ["traces", str(duroxide_db), "-o", str(out)])
    assert result.exit_code == 0, result.output
    spans = spans_of(out)
    con = sqlite3.connect(duroxide_db)
    rows = [
        (i, e, json.loads(d))
        for i, e, d in con.execute("SELECT instance_id, execution_id, event_data FROM history")
    ]
    con.close()
    by_key = {(i, e, d["event_id"]): d for i, e, d in rows}
    expected = {}
    for i, e, d in rows:
        if d["type"] in ("ActivityCompleted", "ActivityFailed"):
            start = by_key[(i, e, d["source_event_id"])]
            if not start["name"].startswith("__duroxide_syscall:"):
                expected[span_id(i, e, start["event_id"]).hex()] = (
                    start["timestamp_ms"],
                    d["timestamp_ms"],
                )
    activities = {s["spanId"]: s for s in spans if s["name"].startswith("activity ")}
    assert set(activities) == set(expected) and expected
    for sid, (start_ms, end_ms) in expected.items():
        assert int(activities[sid]["startTimeUnixNano"]) == start_ms * 1_000_000
        assert int(activities[sid]["endTimeUnixNano"]) == end_ms * 1_000_000
    executions = [s for s in spans if s["name"].startswith("orchestration ")]
    assert len(executions) == sum(1 for _, _, d in rows if d["type"] == "OrchestrationStarted")
    children = [
        s for s in executions if any(k["traceId"] != s["traceId"] for k in s.get("links", []))
    ]
    suborchestrations = [s for s in spans if s["name"].startswith("suborchestration ")]
    assert len(children) == len(suborchestrations) == 2
    span_ids = {s["spanId"] for s in spans}
    for sub in suborchestrations:  # each link names a span the export holds
        assert sub["links"][0]["spanId"] in span_ids


def test_an_undecodable_row_is_named_and_skipped(order_db: Path, tmp_path: Path) -> None:
    con = sqlite3.connect(order_db)
    with con:
        con.execute(
            "INSERT INTO history (instance_id, execution_id, event_id, event_type, event_data)"
            " VALUES ('order-1', 1, 14, 'OrchestrationCompleted', '{oops')"
        )
    con.close()
    out = tmp_path / "t.jsonl"
    result = CliRunner().invoke(main, ["traces", str(order_db), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "'order-1'" in result.output and "1 undecodable rows" in result.output
    assert len(spans_of(out)) == 6


def test_traces_needs_somewhere_to_go(order_db: Path) -> None:
    result = CliRunner().invoke(main, ["traces", str(order_db)])
    assert result.exit_code == 2 and "-o FILE, --otlp URL" in result.output


class Receiver(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP receiver on loopback: decodes each POST with opentelemetry-proto."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = status
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ReceiverHandler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers["Content-Type"] == "application/x-protobuf"
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.paths.append(self.path)
        self.server.requests.append(MessageToDict(request, use_integers_for_enums=True))
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _hex_ids(value: Any) -> Any:
    """protobuf's JSON gives bytes as base64; OTLP JSON gives ids as hex."""
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex()
            if k in ("traceId", "spanId", "parentSpanId")
            else _hex_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


def test_otlp_sends_the_same_requests_the_file_holds(
    duroxide_db: Path, tmp_path: Path, receiver: Receiver
) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    out = tmp_path / "t.jsonl"
    result = CliRunner().invoke(
        main,
        ["traces", str(duroxide_db), "-o", str(out), "--otlp", receiver.url, "--batch", "10"],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) > 1
    assert receiver.paths == ["/v1/traces"] * len(lines)
    assert [_hex_ids(r) for r in receiver.requests] == lines
    assert f"to {receiver.url}/v1/traces" in result.output


def test_a_receiver_that_refuses_is_named_without_a_traceback(
    order_db: Path, tmp_path: Path, receiver: Receiver
) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    receiver.status = 400
    out = tmp_path / "t.jsonl"
    result = CliRunner().invoke(
        main, ["traces", str(order_db), "-o", str(out), "--otlp", f"{receiver.url}/v1/traces"]
    )
    assert result.exit_code == 1
    assert f"the OTLP receiver at {receiver.url}/v1/traces did not take the traces" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()  # the file is whole or not there
    refused = CliRunner().invoke(main, ["traces", str(order_db), "--otlp", "ftp://x"])
    assert refused.exit_code == 1 and "http:// or https:// URL" in refused.output


def test_without_the_otel_extra_otlp_says_what_to_install(order_db: Path) -> None:
    blocked = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from eventstore.cli import main\n"
        f"main(['traces', {str(order_db)!r}, '--otlp', 'http://127.0.0.1:9'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocked], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert "pip install 'eventstore[otel]'" in done.stderr
    assert "Traceback" not in done.stderr


def _peak_bytes(path: Path) -> int:
    with eventstore.open(str(path), readonly=True) as store:
        tracemalloc.start()
        try:
            for spans in TraceStream(store):
                encode_request(spans, [("service.name", "x")], ("s", "1"))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def test_memory_does_not_grow_with_the_store(tmp_path: Path) -> None:
    """Peak memory of a whole-store export at 10x the executions stays flat."""
    sizes = {}
    for count in (300, 3000):  # 3,900 and 39,000 rows: both past a scan page
        path = tmp_path / f"{count}.db"
        with eventstore.open(str(path)) as store, store.transaction():
            for n in range(count):
                store.append(f"order-{n:06}", 1, order_history())
        sizes[count] = _peak_bytes(path)
    assert sizes[3000] < sizes[300] * 1.5, sizes


def test_traces_and_sizes_on_every_backend(store_factory: Any) -> None:
    """The same spans, and sizes equal to the stored rows, on SQLite and PostgreSQL."""
    from eventstore.sizes.advisor import measure

    store = store_factory()
    store.append("order-1::sub::7", 1, child_history())
    store.append("order-1", 1, order_history())
    stream = TraceStream(store)
    spans = [span for batch in stream for span in batch]
    assert len(spans) == 6 and stream.counts.instances == 2
    assert {s.trace_id for s in spans} == {trace_id("order-1"), trace_id("order-1::sub::7")}
    ship = next(s for s in spans if s.name == "suborchestration Ship")
    child = next(s for s in spans if s.name == "orchestration Ship")
    assert ship.links[0].span_id == child.span_id and child.links[0].span_id == ship.span_id
    stored = sum(
        len(r.event_data.encode() if isinstance(r.event_data, str) else r.event_data)
        for r in store.read_all_raw()
    )
    report = measure(store)
    assert report.executions == 2 and report.bytes == stored
    assert report.by_name[("activity", "Charge")].max_bytes == 1
