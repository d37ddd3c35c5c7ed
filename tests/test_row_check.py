"""One row check, one classifier: every reader sees the same rows the same way.

`verify --json`, `stats --json` and `schema check --json` each report
`by_generation`; over the same store they must agree, and a row that `read`
refuses is not counted healthy by any of them.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventstore
from eventstore.cli import main
from tests.conftest import DUROXIDE_DB, DUROXIDE_JSONL, V0A_JSONL, V0B_JSONL

MIXED_JSONL = V0A_JSONL.parent / "mixed-history.jsonl"


def _import(path: Path, target: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    with eventstore.open(str(target)) as store:
        store.import_rows(rows)


def _corrupt(target: Path) -> None:
    """Renumber one row's event_id column (its JSON still says otherwise)."""
    with sqlite3.connect(target) as db:
        (key,) = db.execute(
            "SELECT rowid FROM history WHERE event_id = 2 ORDER BY rowid LIMIT 1"
        ).fetchall()
        db.execute("UPDATE history SET event_id = 999 WHERE rowid = ?", key)
    db.close()


def _by_generation(runner: CliRunner, target: Path) -> dict[str, dict[str, int]]:
    found = {}
    for command in (["verify"], ["stats"], ["schema", "check"]):
        result = runner.invoke(main, [*command, str(target), "--json"])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        found[" ".join(command)] = json.loads(result.stdout)["by_generation"]
    return found


STORES = {
    "duroxide": lambda t: shutil.copyfile(DUROXIDE_DB, t),
    "duroxide-jsonl": lambda t: _import(DUROXIDE_JSONL, t),
    "legacy-v0a": lambda t: _import(V0A_JSONL, t),
    "legacy-v0b": lambda t: _import(V0B_JSONL, t),
    "mixed": lambda t: _import(MIXED_JSONL, t),
}


@pytest.mark.parametrize("corrupt", [False, True], ids=["clean", "one-corrupt-row"])
@pytest.mark.parametrize("name", sorted(STORES))
def test_verify_stats_and_schema_check_agree_on_by_generation(
    tmp_path: Path, name: str, corrupt: bool
) -> None:
    target = tmp_path / "store.db"
    STORES[name](target)
    if corrupt:
        _corrupt(target)
    found = _by_generation(CliRunner(), target)
    assert found["verify"] == found["stats"] == found["schema check"], found
    with eventstore.open(str(target), readonly=True) as store:
        total = store.count()
    counted = sum(found["stats"].values())
    assert counted == total - (1 if corrupt else 0)


def test_a_v0a_store_is_classified_as_legacy_rows_and_v0a_failures(tmp_path: Path) -> None:
    # V0a and V0b read the same without a failure field: such rows are "V0",
    # for every command (schema check used to call them V0b).
    target = tmp_path / "store.db"
    _import(V0A_JSONL, target)
    found = _by_generation(CliRunner(), target)["schema check"]
    assert set(found) == {"V0", "V0a"}


def test_a_renumbered_row_is_not_healthy_for_schema_check(tmp_path: Path) -> None:
    target = tmp_path / "store.db"
    shutil.copyfile(DUROXIDE_DB, target)
    _corrupt(target)
    result = CliRunner().invoke(main, ["schema", "check", str(target), "--json"])
    report = json.loads(result.output)
    assert report["undecodable"] == 1
    assert sum(report["by_generation"].values()) == report["rows"] - 1
