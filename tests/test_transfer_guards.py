"""No command writes onto the store it reads (export, import, copy)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventstore.cli import main


def _spellings(store: Path) -> dict[str, Callable[[], str]]:
    """Ways of naming the store's file (or one of its companions) without saying it."""

    def same() -> str:
        return str(store)

    def other_path() -> str:
        (store.parent / "sub").mkdir(exist_ok=True)
        return str(store.parent / "sub" / ".." / store.name)

    def hard_link() -> str:
        link = store.parent / "hard.db"
        os.link(store, link)
        return str(link)

    def symlink() -> str:
        link = store.parent / "soft.db"
        link.symlink_to(store)
        return str(link)

    def wal() -> str:
        return f"{store}-wal"

    def shm_through_symlinked_dir() -> str:
        alias = store.parent / "alias"
        alias.symlink_to(store.parent, target_is_directory=True)
        return str(alias / f"{store.name}-shm")

    def journal() -> str:
        return f"{store}-journal"

    return {
        f.__name__: f
        for f in (same, other_path, hard_link, symlink, wal, shm_through_symlinked_dir, journal)
    }


SPELLINGS = list(_spellings(Path("x")))


def _store(duroxide_db: Path) -> tuple[Path, bytes]:
    return duroxide_db, duroxide_db.read_bytes()


def _refused(result: Result, store: Path, before: bytes, output: str) -> None:
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    assert output in text and str(store) in text and "same file" in text
    assert store.read_bytes() == before


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_export_refuses_an_output_that_is_the_store(duroxide_db: Path, spelling: str) -> None:
    store, before = _store(duroxide_db)
    output = _spellings(store)[spelling]()
    result = CliRunner().invoke(main, ["export", str(store), "-o", output])
    _refused(result, store, before, output)
    assert not Path(f"{store}-wal").exists() or spelling != "wal"


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_export_refuses_a_quarantine_that_is_the_store(
    duroxide_db: Path, tmp_path: Path, spelling: str
) -> None:
    store, before = _store(duroxide_db)
    output = _spellings(store)[spelling]()
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(store),
            "-o",
            str(tmp_path / "out.jsonl"),
            "--skip-corrupt",
            "--quarantine",
            output,
        ],
    )
    _refused(result, store, before, output)
    assert not (tmp_path / "out.jsonl").exists()  # refused before any output was opened


def test_export_default_quarantine_name_is_checked_too(duroxide_db: Path) -> None:
    # OUTPUT.quarantine.jsonl: with OUTPUT = x, a store named x.quarantine.jsonl.
    store = duroxide_db.parent / "out.quarantine.jsonl"
    duroxide_db.rename(store)
    before = store.read_bytes()
    output = str(duroxide_db.parent / "out")
    result = CliRunner().invoke(main, ["export", str(store), "-o", output, "--skip-corrupt"])
    _refused(result, store, before, str(store))


def test_export_refuses_the_same_file_for_output_and_quarantine(
    duroxide_db: Path, tmp_path: Path
) -> None:
    out = str(tmp_path / "out.jsonl")
    result = CliRunner().invoke(
        main, ["export", str(duroxide_db), "-o", out, "--skip-corrupt", "--quarantine", out]
    )
    assert result.exit_code == 2 and "same file" in result.output
    assert not Path(out).exists()


@pytest.mark.parametrize("spelling", ["same", "other_path", "hard_link", "symlink"])
def test_import_refuses_to_read_the_store_it_writes(duroxide_db: Path, spelling: str) -> None:
    store, before = _store(duroxide_db)
    file = _spellings(store)[spelling]()
    result = CliRunner().invoke(main, ["import", str(store), file])
    _refused(result, store, before, file)


@pytest.mark.parametrize("spelling", ["other_path", "hard_link", "symlink"])
def test_copy_refuses_a_destination_that_is_the_source(duroxide_db: Path, spelling: str) -> None:
    store, before = _store(duroxide_db)
    dest = _spellings(store)[spelling]()
    result = CliRunner().invoke(main, ["copy", str(store), dest])
    _refused(result, store, before, dest)
    sqlite_url = CliRunner().invoke(main, ["copy", str(store), f"sqlite:///{dest}"])
    _refused(sqlite_url, store, before, dest)


def test_a_different_file_is_written(duroxide_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere.jsonl"
    result = CliRunner().invoke(main, ["export", str(duroxide_db), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 154
