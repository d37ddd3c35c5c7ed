"""The README's Python example runs as written (so the front page stays true)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"## In Python\n\n```python\n(.*?)```", text, re.S)
    assert found, "README.md lost its Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(found.group(1), "README.md", "exec"), namespace)
    assert (tmp_path / "histories.db").exists()
    import eventstore

    with eventstore.open("histories.db") as store:
        assert [e.event_type for e in store.read("order-7")] == [
            "OrchestrationStarted",
            "ActivityScheduled",
            "ActivityCompleted",
        ]


def test_the_asyncio_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"## asyncio, and group commit\n\n```python\n(.*?)```", text, re.S)
    assert found, "README.md lost its asyncio example"
    monkeypatch.chdir(tmp_path)
    exec(compile(found.group(1), "README.md", "exec"), {})
    import eventstore

    with eventstore.open("histories.db") as store:
        assert store.count() == 65
        assert [e.event_id for e in store.read("order-7")] == [1, 2]
    assert capsys.readouterr().out.startswith("1 [")


def test_the_catalog_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"## The execution catalog and `ls`\n.*?```python\n(.*?)```", text, re.S)
    assert found, "README.md lost its catalog example"
    monkeypatch.chdir(tmp_path)
    exec(compile(found.group(1), "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("order-981 1 running ")
    assert printed[1].startswith("ExecutionRecord(instance_id='order-981'")
