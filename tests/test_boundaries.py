"""The edges of opening a store: plain paths, options, passwords, read-only media."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import eventstore
from eventstore import TargetError
from eventstore.testing import HistoryBuilder


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventstore", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def _fill(path: Path, instance: str = "order-1") -> None:
    with eventstore.open(str(path)) as store:
        store.append(instance, 1, HistoryBuilder(instance, "Hello", "w0").completed("hi").build())


# -- a plain path is that path (issue 15 item 2) -----------------------------------


@pytest.mark.parametrize("name", ["x%41.db", "pct%25.db", "q?mark.db", "hash#.db", "sp ace.db"])
def test_read_only_opens_take_a_path_literally(tmp_path: Path, name: str) -> None:
    _fill(tmp_path / name, "literal")
    # The file that a percent-decoded path would name holds something else.
    _fill(tmp_path / "xA.db", "decoded")
    with eventstore.open(str(tmp_path / name), readonly=True) as store:
        assert store.instances() == ["literal"]
    listed = _cli("ls", "--json", name, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["instance_id"] for line in listed.stdout.splitlines()] == ["literal"]


def test_a_missing_file_with_percent_in_its_name_is_not_found(tmp_path: Path) -> None:
    _fill(tmp_path / "xA.db")
    with pytest.raises(eventstore.StoreNotFoundError):
        eventstore.open(str(tmp_path / "x%41.db"), readonly=True)


# -- options name themselves and the valid ones (issue 14 item 5) --------------------


def test_an_unknown_sqlite_option_is_named_with_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(TargetError) as caught:
        eventstore.open(str(tmp_path / "h.db"), busy_timout_ms=5)  # misspelt
    message = str(caught.value)
    assert "'busy_timout_ms'" in message and "SQLite" in message
    assert "busy_timeout_ms" in message and "synchronous" in message
    assert "__init__" not in message and "unexpected keyword" not in message
    assert not (tmp_path / "h.db").exists()


@pytest.mark.parametrize(
    ("option", "value", "needs"),
    [
        ("busy_timeout_ms", "50", "non-negative integer"),
        ("busy_timeout_ms", -1, "non-negative integer"),
        ("busy_timeout_ms", True, "non-negative integer"),
        ("synchronous", "sometimes", "one of off, normal, full, extra"),
        ("synchronous", 2, "one of off, normal, full, extra"),
        ("readonly", "yes", "True or False"),
    ],
)
def test_an_ill_typed_sqlite_option_is_named(
    tmp_path: Path, option: str, value: object, needs: str
) -> None:
    with pytest.raises(TargetError, match=f"option {option} must be") as caught:
        eventstore.open(str(tmp_path / "h.db"), **{option: value})
    assert needs in str(caught.value)


def test_ill_typed_store_options_are_named(tmp_path: Path) -> None:
    target = str(tmp_path / "h.db")
    with pytest.raises(TargetError, match="option writer_version"):
        eventstore.open(target, writer_version="latest")
    with pytest.raises(TargetError, match="option clock must be callable"):
        eventstore.open(target, clock=5)
    with pytest.raises(TargetError, match="option codec"):
        eventstore.open(target, codec="json")


def test_an_unknown_postgres_option_is_named_before_connecting() -> None:
    pytest.importorskip("psycopg")
    # Nothing listens there: the option is refused before any connection.
    url = "postgresql://u:pw@127.0.0.1:1/db"
    with pytest.raises(TargetError) as caught:
        eventstore.open(url, busy_timeout_ms=5)
    assert "'busy_timeout_ms'" in str(caught.value) and "pool_max_size" in str(caught.value)
    with pytest.raises(TargetError, match="option connect_timeout must be a positive number"):
        eventstore.open(url, connect_timeout="10")
    with pytest.raises(TargetError, match="option schema"):
        eventstore.open(url, schema=5)


# -- passwords are never printed (issue 15 item 10) -----------------------------------

MALFORMED = [
    ("s3cr3t pw", "postgresql://app:s3cr3t pw@localhost/db"),
    ("s3cr3t%zz", "postgresql://app:s3cr3t%zz@localhost/db"),
    ("s3cr3t%", "postgresql://app:s3cr3t%@localhost/db"),
    ("s3c/r3t", "postgresql://app:s3c/r3t@localhost/db"),
    ("s3cr3t", "postgresql://app:s3cr3t@local host/db"),
    ("s3cr3t", "postgresql://app:s3cr3t@localhost:notaport/db"),
    ("s3cr3t", "postgresql://app:s3cr3t@[::1/db"),
    ("s3cr3t", "postgresql://app:s3cr3t@localhost/db?sslmode=bogus&connect_timeout=x y"),
    ("hunter2 x", "postgresql://localhost/db?password=hunter2 x&user=app"),
    ("hunter2%zz", "postgresql://localhost/db?password=hunter2%zz"),
]


def _pieces(secret: str) -> list[str]:
    """The password and every part of it of 3 characters or more that is not URL noise."""
    parts = {secret, *secret.replace("%", " ").replace("/", " ").split()}
    return [p for p in parts if len(p) >= 3]


@pytest.mark.parametrize(("password", "url"), MALFORMED, ids=[u for _, u in MALFORMED])
def test_no_part_of_a_password_is_in_the_error(password: str, url: str) -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(eventstore.EventStoreError) as caught:
        eventstore.open(url, connect_timeout=1)
    message = str(caught.value)
    for piece in _pieces(password):
        assert piece not in message, message


@pytest.mark.parametrize(("password", "url"), MALFORMED[:4], ids=[u for _, u in MALFORMED[:4]])
def test_no_part_of_a_password_reaches_the_cli(password: str, url: str) -> None:
    pytest.importorskip("psycopg")
    result = _cli("ls", url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for piece in _pieces(password):
        assert piece not in result.stderr + result.stdout


def test_a_malformed_url_still_says_what_is_wrong() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(TargetError, match="password is not valid in a URL"):
        eventstore.open("postgresql://app:s3cr3t%zz@localhost/db")
    with pytest.raises(TargetError, match="postgresql://app:\\*\\*\\*@localhost/db"):
        eventstore.open("postgresql://app:s3c/r3t@localhost/db")
    with pytest.raises(TargetError, match="local host"):  # the fault is named, in the host
        eventstore.open("postgresql://app:s3cr3t@local host/db")


# -- read-only media (issue 15 item 11) ------------------------------------------------

READING = [
    ["ls", "{db}"],
    ["ls", "--json", "{db}"],
    ["show", "{db}", "order-1"],
    ["verify", "{db}"],
    ["stats", "{db}"],
    ["export", "{db}"],
    ["schema", "check", "{db}"],
]


def _unshare_works(directory: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            'mount --bind -o ro "$1" "$1" && ! touch "$1/w"',
            "sh",
            str(directory),
        ],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0 and not (directory / "w").exists()


def _read_only_runner(directory: Path) -> list[str]:
    """A command prefix under which `directory` cannot be written, even by root.

    Not root: chmod does it. Root ignores file modes, so a read-only bind
    mount in a private mount namespace (`unshare -rm`) does it instead.
    """
    if os.geteuid() != 0:
        for path in directory.iterdir():
            path.chmod(0o444)
        directory.chmod(0o555)
        return []
    if not _unshare_works(directory):
        reason = "running as root without unshare/mount: no way to make a directory read-only"
        if os.environ.get("CI") == "true":  # CI must run it, as it must PostgreSQL
            pytest.fail(reason)
        pytest.skip(reason)
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    return ["unshare", "-rm", "sh", "-c", script, "sh", str(directory)]


@pytest.fixture
def read_only_store(tmp_path: Path) -> tuple[Path, list[str]]:
    directory = tmp_path / "ro"
    directory.mkdir()
    db = directory / "h.db"
    _fill(db)
    # As a store is left on a medium copied from a live system: no -wal/-shm.
    for suffix in ("-wal", "-shm"):
        assert not Path(f"{db}{suffix}").exists()
    runner = _read_only_runner(directory)
    yield db, runner
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


@pytest.mark.parametrize("command", READING, ids=lambda c: " ".join(c[:2]))
def test_reading_commands_work_on_a_read_only_directory(
    read_only_store: tuple[Path, list[str]], command: list[str]
) -> None:
    db, runner = read_only_store
    argv = [a.format(db=db) for a in command]
    result = subprocess.run(
        [*runner, sys.executable, "-m", "eventstore", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "order-1" in result.stdout or command[0] in ("verify", "stats", "schema")
    assert sorted(p.name for p in db.parent.iterdir()) == ["h.db"]  # nothing was created


def test_writing_on_a_read_only_directory_fails_cleanly(
    read_only_store: tuple[Path, list[str]],
) -> None:
    db, runner = read_only_store
    result = subprocess.run(
        [*runner, sys.executable, "-m", "eventstore", "init", str(db)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


# -- throwaway stores --------------------------------------------------------------------


def test_destroy_drops_the_store_and_its_own_schema(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    psycopg = pytest.importorskip("psycopg")
    url = request.getfixturevalue("postgres_target_factory")()
    store = eventstore.open(url, schema="throwaway_1")
    store.append("i", 1, HistoryBuilder("i", "Hello").build())  # also records the catalog
    store.destroy()
    with psycopg.connect(url, autocommit=True) as con:
        row = con.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'throwaway_1'"
        ).fetchone()
    assert row == (0,)
    with pytest.raises(eventstore.StoreNotFoundError):
        eventstore.open(url, schema="throwaway_1", readonly=True)


def test_destroy_keeps_a_schema_that_holds_other_tables(
    request: pytest.FixtureRequest,
) -> None:
    psycopg = pytest.importorskip("psycopg")
    url = request.getfixturevalue("postgres_target_factory")()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE SCHEMA shared_2")
        con.execute("CREATE TABLE shared_2.acks (id int)")
    eventstore.open(url, schema="shared_2").destroy()
    with psycopg.connect(url, autocommit=True) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'shared_2'"
        ).fetchall()
    assert tables == [("acks",)]


def test_destroy_on_sqlite_drops_our_tables(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = eventstore.open(str(path))
    store.append("i", 1, HistoryBuilder("i", "Hello").build())
    store.destroy()
    with pytest.raises(eventstore.StoreNotFoundError):
        eventstore.open(str(path), readonly=True)
