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
import socket
import subprocess
import tempfile
import threading
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

    def __init__(self) -> None:
        bindir = find_bindir()
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
        self.root.chmod(0o700)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
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
        for attempt in range(3):
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {self.port}",
                    f"-k {self.root}",
                    "-c max_connections=300",
                    "-c fsync=off",
                    "-c full_page_writes=off",
                    "-c shared_buffers=64MB",
                ]
            )
            result = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                "-o", options, "start",
            )  # fmt: skip
            if result.returncode == 0:
                self._started = True
                return self
            if attempt == 2:
                self._check(result, "pg_ctl start")
        return self

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
def running_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
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
