"""`eventstore replay TARGET --orchestrations MODULE`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from eventstore.cli import main
from tests.conftest import DUROXIDE_JSONL, V0A_JSONL

MODULE = "tests.orchestrations.corpus"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["replay", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


def test_a_store_that_replays_exits_0(duroxide_db: Path) -> None:
    code, output = _run(str(duroxide_db), "--orchestrations", MODULE)
    assert code == 0, output
    assert "26 executions replayed: 26 ok" in output


def test_a_jsonl_export_replays_too() -> None:
    code, output = _run(str(DUROXIDE_JSONL), "-o", MODULE, "--verbose")
    assert code == 0, output
    assert output.count("\nok  ") + output.startswith("ok  ") == 26
    assert "looper-7-0 execution 4 (Looper): completed" in output


def test_failures_exit_1_with_a_report() -> None:
    code, output = _run(str(V0A_JSONL), "-o", MODULE)
    assert code == 1
    assert "NONDETERMINISTIC  mailbox-7-0 execution 1 (Mailbox)" in output
    assert "event 6" in output
    assert "2 executions failed to replay" in output
    assert "Traceback" not in output


def test_unregistered_orchestrations_fail_unless_skipped(tmp_path: Path) -> None:
    module = tmp_path / "only_hello.py"
    module.write_text(
        "from tests.orchestrations.corpus import hello\nMINE = {'Hello': hello}\n",
        encoding="utf-8",
    )

    sys.path.insert(0, str(tmp_path))
    try:
        code, output = _run(str(DUROXIDE_JSONL), "-o", "only_hello:MINE")
        assert code == 1
        assert "UNREGISTERED" in output
        assert "2 ok" in output
        code, output = _run(str(DUROXIDE_JSONL), "-o", "only_hello:MINE", "--skip-unregistered")
        assert code == 0, output
    finally:
        sys.path.remove(str(tmp_path))


def test_a_module_that_does_not_import_is_one_clear_line() -> None:
    code, output = _run(str(DUROXIDE_JSONL), "-o", "no_such_module_here")
    assert code == 1
    assert "cannot import 'no_such_module_here'" in output
    assert "Traceback" not in output


def test_a_module_without_a_mapping_is_refused() -> None:
    code, output = _run(str(DUROXIDE_JSONL), "-o", "tests.orchestrations")
    assert code == 1
    assert "has no mapping 'ORCHESTRATIONS'" in output


def test_a_missing_store_is_one_clear_line(tmp_path: Path) -> None:
    code, output = _run(str(tmp_path / "absent.db"), "-o", MODULE)
    assert code == 1
    assert "Traceback" not in output
    assert output.strip().startswith("Error:")


def test_a_broken_jsonl_file_is_one_clear_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"nope": 1}\n', encoding="utf-8")
    code, output = _run(str(broken), "-o", MODULE)
    assert code == 1
    assert "line 1" in output
    assert "Traceback" not in output


def test_json_output_and_instance_filter(duroxide_db: Path) -> None:
    code, output = _run(
        str(V0A_JSONL), "-o", MODULE, "--json", "-i", "mailbox-7-0", "-i", "looper-7-1"
    )
    assert code == 1
    lines = [json.loads(line) for line in output.splitlines()]
    assert [(x["instance_id"], x["execution_id"], x["outcome"]) for x in lines] == [
        ("looper-7-1", 1, "ok"),
        ("looper-7-1", 2, "ok"),
        ("looper-7-1", 3, "ok"),
        ("looper-7-1", 4, "ok"),
        ("mailbox-7-0", 1, "nondeterministic"),
    ]
    assert lines[0]["status"] == "continued_as_new"
    failure = lines[-1]
    assert failure["event_id"] == 6
    assert failure["recorded"].startswith("OrchestrationCompleted")
    assert failure["attempted"].startswith("scheduled dequeue_event 'inbox'")
    assert failure["where"].rsplit(":", 1)[0].endswith("corpus.py")

    code, output = _run(str(duroxide_db), "-o", MODULE, "--json", "-i", "hello-7-1")
    assert code == 0
    (only,) = [json.loads(line) for line in output.splitlines()]
    assert (only["instance_id"], only["status"]) == ("hello-7-1", "completed")
