"""A throwaway PostgreSQL server for the test suite (and the benchmark).

`PostgresServer` runs initdb in a fresh temporary directory and starts the
server listening only on 127.0.0.1 (a free port) with its unix socket in that
directory; `stop()` shuts it down (pg_ctl stop -m fast) and removes the
directory. PostgreSQL refuses to run as root, so under root the server runs as
an unprivileged system user (created when absent) via `runuser`.

Fixtures: `postgres_server` (session-scoped) and `postgres_target_factory`, a
callable that creates a fresh empty database per call and returns its
`postgresql://` URL. Without the server binaries the tests that need them are
skipped with a message, except under CI=true, where they fail loudly.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest

__all__ = [
    "ENABLE_HINT",
    "PostgresServer",
    "ServerUnavailable",
    "find_bindir",
    "postgres_server",
    "postgres_target_factory",
]

SERVER_USER: Final = "eventstore-pg"
SUPERUSER: Final = "eventstore"
PASSWORD: Final = "test-secret-pw"
ENABLE_HINT: Final = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found; install them with "
    "`sudo bash scripts/system-deps.sh` (or set EVENTSTORE_PG_BINDIR) to run the PostgreSQL tests"
)


FAST: Final = {
    "max_connections": "300",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "64MB",
}
"""The test server's settings: nothing survives it, so nothing is synced."""


class ServerUnavailable(RuntimeError):
    """The server binaries are missing or the server could not start."""


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl (newest Debian version first)."""
    configured = os.environ.get("EVENTSTORE_PG_BINDIR")
    if configured:
        ok = (Path(configured) / "initdb").exists() and (Path(configured) / "pg_ctl").exists()
        return Path(configured) if ok else None
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _server_user() -> str | None:
    """The user to run the server as: None when we are not root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
        return SERVER_USER
    except KeyError:
        pass
    useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run([*useradd, SERVER_USER], check=True, capture_output=True)
        return SERVER_USER
    return "nobody"  # no useradd: the conventional unprivileged user


class PostgresServer:
    """One private PostgreSQL server in a temporary directory."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        bindir = find_bindir()
        self.settings = {**FAST, **(settings or {})}
        """Server settings (-c): the test defaults (fsync off), overridden."""
        if bindir is None:
            raise ServerUnavailable(ENABLE_HINT)
        self.bindir = bindir
        self.user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="eventstore-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._started = False

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=120, cwd=self.root
        )

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ServerUnavailable(
                f"{what} failed ({result.returncode}): {result.stderr.strip()}\n{log}"
            )

    def start(self) -> PostgresServer:
        self._own()
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self.user is not None:
            os.chown(pwfile, pwd.getpwnam(self.user).pw_uid, -1)
        self._check(
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ),
            "initdb",
        )
        pwfile.unlink()
        self._start_server()
        return self

    def _own(self) -> None:
        """The temporary directory, private to the server's user."""
        self.root.chmod(0o700)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _start_server(self, extra: dict[str, str] | None = None) -> None:
        """pg_ctl start on a free port (three tries: a port can be taken meanwhile)."""
        for attempt in range(3):
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {self.port}",
                    f"-k {self.root}",
                    *(f"-c {k}={v}" for k, v in {**self.settings, **(extra or {})}.items()),
                ]
            )
            result = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                "-o", options, "start",
            )  # fmt: skip
            if result.returncode == 0:
                self._started = True
                return
            if attempt == 2:
                self._check(result, "pg_ctl start")

    def start_standby(self, name: str = "standby1") -> PostgresServer:
        """A hot standby of this (running) server, streaming from it: a base
        backup (pg_basebackup), standby.signal, and `primary_conninfo` naming
        it `name` (what `make_synchronous` lists); started on a free port."""
        standby = PostgresServer(self.settings)
        standby._own()
        conninfo = (
            f"host=127.0.0.1 port={self.port} user={SUPERUSER} password={PASSWORD}"
            f" application_name={name}"
        )
        standby._check(
            standby._run(
                "pg_basebackup", "-D", str(standby.data), "-d", conninfo,
                "-X", "stream", "-c", "fast", "--no-sync",
            ),
            "pg_basebackup",
        )  # fmt: skip
        (standby.data / "standby.signal").touch()
        with (standby.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"primary_conninfo = '{conninfo}'\n")
        standby._start_server({"hot_standby": "on"})
        return standby

    def make_synchronous(self, name: str = "standby1") -> None:
        """Commits wait for the standby `name` (synchronous_standby_names), once
        it streams in sync."""
        import psycopg  # the postgres extra

        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'")
            con.execute("SELECT pg_reload_conf()")
            for _ in range(600):
                row = con.execute(
                    "SELECT count(*) FROM pg_stat_replication"
                    " WHERE application_name = %s AND sync_state = 'sync'",
                    (name,),
                ).fetchone()
                if row is not None and row[0]:
                    return
                time.sleep(0.1)
        raise ServerUnavailable(f"the standby {name} never streamed in sync")

    def kill(self) -> None:
        """SIGKILL the server and every process of it, as a crash of its machine would."""
        pid_file = self.data / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0])
        children = [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _parent_of(int(entry.name)) == postmaster
        ]
        for pid in [postmaster, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._started = False

    def promote(self) -> None:
        """End recovery: this standby becomes a primary (pg_ctl promote, waits)."""
        self._check(self._run("pg_ctl", "-D", str(self.data), "-w", "promote"), "pg_ctl promote")

    def stop(self) -> None:
        if self._started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres", *, password: str | None = PASSWORD) -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A fresh empty database; returns its URL."""
        import psycopg  # the postgres extra

        with self._lock:
            name = f"es_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def running_server(settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    server = PostgresServer(settings)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    ci = os.environ.get("CI", "").lower() == "true"
    try:
        server = PostgresServer()
    except ServerUnavailable as exc:
        if ci:
            pytest.fail(f"CI=true: the PostgreSQL tests must run, but {exc}", pytrace=False)
        pytest.skip(str(exc))
    try:
        server.start()
    except (ServerUnavailable, OSError, subprocess.SubprocessError) as exc:
        server.stop()
        if ci:
            pytest.fail(f"CI=true: the PostgreSQL test server did not start: {exc}", pytrace=False)
        pytest.skip(f"the PostgreSQL test server did not start: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_target_factory(postgres_server: PostgresServer) -> Callable[[], str]:
    """A callable creating a fresh empty database per call; returns its URL."""
    return postgres_server.create_database
