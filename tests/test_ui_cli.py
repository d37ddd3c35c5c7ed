"""`eventstore ui` as a command and its JSON API: what a person gets when it works and when not.

The served pages themselves are tested in a browser (tests/test_ui_browser.py);
here a real server answers real HTTP on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner

import eventstore
from eventstore import events as ev
from eventstore.cli import main
from eventstore.cli.ui import is_loopback
from eventstore.ui import ViewerServer, create_app
from eventstore.ui.server import bind_socket

from .ui_browser import require_chromium, require_playwright
from .ui_histories import T, seed


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ui-cli") / "store.db"
    with eventstore.open(str(path)) as store:
        seed(store)
    return path


def get(url: str, *, host: str | None = None, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method)
    if host is not None:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def api(store_path: Path) -> Iterator[str]:
    with (
        eventstore.open(str(store_path), readonly=True) as store,
        ViewerServer(create_app(store), bind_socket("127.0.0.1", 0)) as server,
    ):
        yield server.url.rstrip("/")


def test_bad_query_values_are_named(api: str) -> None:
    status, body = get(f"{api}/api/executions?status=sleeping")
    assert status == 400 and "status must be one of running, completed" in body["error"]
    status, body = get(f"{api}/api/executions?since=yesterday")
    assert status == 400 and "since must be a date" in body["error"]
    status, body = get(f"{api}/api/executions?page=0")
    assert status == 400 and "page must be a whole number" in body["error"]
    status, body = get(f"{api}/api/execution?instance=order-1&execution=one")
    assert status == 400 and "execution must be a whole number, not 'one'" in body["error"]
    status, body = get(f"{api}/api/execution?instance=order-1&execution=9")
    assert status == 404 and "order-1" in body["error"]


def test_read_only_loopback_and_locked_down(api: str) -> None:
    status, _ = get(f"{api}/api/executions", method="POST")
    assert status == 405
    status, _ = get(f"{api}/api/executions", host="attacker.example")
    assert status == 400  # a rebinding page cannot read the store
    for loopback_name in ("localhost:8080", "[::1]:8080", "127.0.0.1"):
        status, _ = get(f"{api}/api/executions", host=loopback_name)
        assert status == 200, loopback_name
    with urllib.request.urlopen(f"{api}/", timeout=10) as response:
        policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "default-src 'none'" in policy


def test_the_shipped_assets_are_served_from_the_package(api: str) -> None:
    status, script = get(f"{api}/static/viewer.js")
    assert status == 200 and "innerHTML" not in script.replace("No innerHTML", "")
    status, _ = get(f"{api}/static/../app.py")
    assert status == 404


def test_loopback_is_told_apart() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.0.2.7", "::", "example.org"))


def test_a_missing_extra_is_one_line_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch, store_path: Path
) -> None:
    for name in [m for m in sys.modules if m == "eventstore.ui" or m.startswith("eventstore.ui.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(eventstore, "ui", raising=False)
    for name in [m for m in sys.modules if m.partition(".")[0] == "starlette"]:
        monkeypatch.setitem(sys.modules, name, None)  # None: "cannot be imported"
    monkeypatch.setitem(sys.modules, "starlette", None)
    result = CliRunner().invoke(main, ["ui", str(store_path), "--port", "0"])
    assert result.exit_code == 1
    assert "pip install 'eventstore[ui]'" in result.output
    assert "starlette is not installed" in result.output
    assert "Traceback" not in result.output


def test_a_port_in_use_is_one_line(store_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["ui", str(store_path), "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}:" in result.output
    assert "Traceback" not in result.output


def _serve(target: str, cwd: Path, **env: str) -> tuple[subprocess.Popen[str], str]:
    """`eventstore ui TARGET --port 0` in a process of its own, and the URL it says."""
    process = subprocess.Popen(
        [sys.executable, "-m", "eventstore", "ui", target, "--port", "0"],
        cwd=cwd,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if " at http://" in line:
            return process, line.split(" at ", 1)[1].split()[0].rstrip("/")
        if not line and process.poll() is not None:
            break
    process.kill()
    process.wait()
    raise AssertionError(f"the viewer did not start: {''.join(lines)}")


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        _, rest = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    assert process.returncode == 0, rest
    return rest


def test_the_command_serves_a_store_until_ctrl_c(store_path: Path, tmp_path: Path) -> None:
    process, url = _serve(str(store_path), tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:")
        status, body = get(f"{url}/api/executions?status=failed")
        assert status == 200 and body["store"].endswith("store.db")
        assert {r["instance_id"] for r in body["rows"]} >= {"hostile-<b>bold</b>"}
    finally:
        rest = _stop(process)
    assert "Traceback" not in rest


def test_an_export_file_is_viewed_as_it_is(store_path: Path, tmp_path: Path) -> None:
    export = tmp_path / "history.jsonl"
    result = CliRunner().invoke(main, ["export", str(store_path), "-o", str(export)])
    assert result.exit_code == 0, result.output
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    process, url = _serve("history.jsonl", tmp_path, TMPDIR=str(scratch))
    try:
        assert len(list(scratch.iterdir())) == 1  # the export, read into a SQLite file
        status, body = get(f"{url}/api/executions?q=order")
        assert status == 200 and body["store"].startswith("history.jsonl (export file")
        assert sorted(r["instance_id"] for r in body["rows"]) == ["order-1", "order-1-ship"]
        status, view = get(f"{url}/api/execution?instance=order-1")
        assert status == 200 and [e["event_id"] for e in view["events"]] == list(range(1, 11))
    finally:
        _stop(process)
    assert export.read_text(encoding="utf-8").count("\n") > 30  # the file was only read
    assert list(scratch.iterdir()) == []  # and its copy removed


def test_an_export_file_that_is_not_json_lines_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"instance_id": "a"}\nnot json at all\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["ui", str(bad), "--port", "0"])
    assert result.exit_code == 1
    assert "line 1" in result.output or "line 2" in result.output
    assert "Traceback" not in result.output


@pytest.mark.postgres
def test_a_postgresql_store_is_served_the_same(
    postgres_target_factory: Callable[[], str],
) -> None:
    target = postgres_target_factory()
    with eventstore.open(target) as writer:
        seed(writer)
        with (
            eventstore.open(target, readonly=True) as store,
            ViewerServer(create_app(store), bind_socket("127.0.0.1", 0)) as server,
        ):
            url = server.url.rstrip("/")
            status, body = get(f"{url}/api/executions?q=order")
            assert status == 200 and body["store"].startswith("postgresql")
            assert [r["instance_id"] for r in body["rows"]] == ["order-1-ship", "order-1"]
            status, view = get(f"{url}/api/execution?instance=order-1")
            bars = {b["start_event_id"]: b for b in view["bars"]}
            assert bars[8]["segments"][0] == {
                "what": "wait",
                "start_ms": T + 800,
                "end_ms": T + 850,
            }
            assert (bars[6]["outcome"], bars[6]["end_event_id"]) == ("failed", 7)
            done = ev.ActivityCompleted(event_id=3, source_event_id=2, timestamp_ms=T, result="1")
            writer.append("waiting-1", 1, [done], expected_last_event_id=2)
            status, last = get(f"{url}/api/execution/last?instance=waiting-1&execution=1")
            assert (status, last) == (200, {"last_event_id": 3, "executions": [1]})


def test_a_row_that_does_not_decode_is_named_and_the_rest_still_served(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    with eventstore.open(str(path)) as store:
        seed(store)
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "UPDATE history SET event_data = '{\"broken' "
            "WHERE instance_id = 'order-1' AND event_id = 5"
        )
    con.close()
    with (
        eventstore.open(str(path), readonly=True) as store,
        ViewerServer(create_app(store), bind_socket("127.0.0.1", 0)) as server,
    ):
        url = server.url.rstrip("/")
        status, body = get(f"{url}/api/execution?instance=order-1")
        assert status == 500
        assert "order-1" in body["error"] and "5" in body["error"]
        status, view = get(f"{url}/api/execution?instance=chain-1")
        assert status == 200 and view["status"] == "completed"
        status, listed = get(f"{url}/api/executions?q=order")
        assert status == 200 and len(listed["rows"]) == 2


def test_a_database_duroxide_wrote_is_viewed_and_list_and_pages_agree(duroxide_db: Path) -> None:
    """The real duroxide fixture: every execution the list names opens, with the
    same status, and its bars pair every completion the history holds."""
    with (
        eventstore.open(str(duroxide_db), readonly=True) as store,
        ViewerServer(create_app(store), bind_socket("127.0.0.1", 0)) as server,
    ):
        url = server.url.rstrip("/")
        status, listed = get(f"{url}/api/executions?all=1&size=500")
        assert status == 200 and len(listed["rows"]) > 20 and not listed["has_next"]
        for row in listed["rows"]:
            query = urlencode({"instance": row["instance_id"], "execution": row["execution_id"]})
            status, view = get(f"{url}/api/execution?{query}")
            assert status == 200 and view["status"] == row["status"], row
            assert len(view["events"]) == row["event_count"]
            ended = {b["end_event_id"] for b in view["bars"]}
            sourced = {e["event_id"] for e in view["events"] if e["source_event_id"] is not None}
            assert sourced <= ended, row


@pytest.mark.parametrize("missing", ["playwright", "chromium"])
def test_the_browser_tests_fail_under_ci_rather_than_skip(
    missing: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without Playwright or Chromium the browser tests skip on a developer's
    machine; under CI=true, which installs both, they fail instead."""
    if missing == "playwright":
        monkeypatch.setitem(sys.modules, "playwright", None)  # import raises ImportError
        check = require_playwright
    else:
        monkeypatch.setattr("tests.ui_browser.CHROMIUM", tmp_path / "no-chromium")
        check = require_chromium
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=missing):
        check()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=missing):
        check()
