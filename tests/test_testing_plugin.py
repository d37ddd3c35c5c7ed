"""The pytest plugin as users get it: a sample project, run by pytest in a subprocess.

The plugin is found through the `pytest11` entry point of the installed
package; nothing here registers it by hand.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

SAMPLE = textwrap.dedent(
    """
    from eventstore import events as ev
    from eventstore.replay import replay


    def greet(ctx, name):
        greeting = yield ctx.schedule_activity("Greet", name)
        yield ctx.schedule_timer(1000)
        return greeting.upper()


    def test_builder_history_replays(history_builder):
        events = (
            history_builder("Greeter", "ada")
            .activity("Greet", "ada", result="hello ada")
            .timer(1000)
            .completed("HELLO ADA")
            .build()
        )
        result = replay(events, greet)
        assert result.status == "completed"
        assert result.value == "HELLO ADA"


    def test_store_round_trip(history_store, history_builder):
        builder = history_builder("Greeter", "bob").activity("Greet", "bob", result="hi")
        builder.append_to(history_store)
        stored = history_store.read(builder.instance_id)
        assert [type(e) for e in stored] == [
            ev.OrchestrationStarted, ev.ActivityScheduled, ev.ActivityCompleted
        ]
        assert replay(stored, greet).status == "pending"


    def test_each_test_gets_an_empty_store(history_store):
        assert history_store.count() == 0
        print("BACKEND", history_store.description)
    """
)

FAILING = textwrap.dedent(
    """
    from eventstore.replay import replay
    from eventstore.errors import NondeterminismError


    def test_changed_code_is_caught(history_builder):
        events = history_builder("G").activity("Greet", "x", result="y").completed("y").build()

        def changed(ctx, _input):
            value = yield ctx.schedule_activity("Greet2", "x")
            return value

        replay(events, changed)  # raises: the test fails
    """
)


def _pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "test_sample.py").write_text(SAMPLE, encoding="utf-8")
    return tmp_path


def test_the_entry_point_provides_the_fixtures(project: Path) -> None:
    run = _pytest(project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
    assert "BACKEND sqlite " in run.stdout
    assert "history.db" in run.stdout


def test_the_backend_option_selects_memory(project: Path) -> None:
    run = _pytest(project, "--eventstore-backend=memory")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BACKEND sqlite :memory:" in run.stdout


def test_the_backend_can_be_set_in_the_ini_file(project: Path) -> None:
    (project / "pytest.ini").write_text("[pytest]\neventstore_backend = memory\n", encoding="utf-8")
    run = _pytest(project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BACKEND sqlite :memory:" in run.stdout


def test_an_unknown_backend_is_a_usage_error(project: Path) -> None:
    run = _pytest(project, "--eventstore-backend=oracle")
    assert run.returncode != 0
    assert "expected sqlite, memory or a postgresql:// URL" in run.stdout + run.stderr


def test_a_nondeterministic_change_fails_the_users_test(tmp_path: Path) -> None:
    (tmp_path / "test_failing.py").write_text(FAILING, encoding="utf-8")
    run = _pytest(tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout
    assert "ReplayMismatchError" in run.stdout
    assert "'Greet2'" in run.stdout


@pytest.mark.postgres
def test_the_backend_option_takes_a_postgresql_url(
    project: Path, postgres_target_factory: Callable[[], str]
) -> None:
    url = postgres_target_factory()
    run = _pytest(project, f"--eventstore-backend={url}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
    assert run.stdout.count("BACKEND postgresql") == 1
    assert "eventstore_test_" in run.stdout
    # Each test had a schema of its own, dropped afterwards.
    import psycopg

    with psycopg.connect(url) as connection:
        left = connection.execute(
            "SELECT count(*) FROM information_schema.schemata"
            " WHERE schema_name LIKE 'eventstore_test_%'"
        ).fetchone()
    assert left == (0,)


THIRD_PARTY = textwrap.dedent(
    """
    from eventstore import HistoryStore
    from eventstore.backends.sqlite import SQLiteBackend
    from eventstore.testing.conformance import HistoryStoreConformance


    class TestPluginBackend(HistoryStoreConformance):
        '''No hooks: the stores come from the plugin (--eventstore-backend).'''


    class TestOwnBackend(HistoryStoreConformance):
        '''A backend the project builds itself, as a third party would.'''

        def create_store(self, **options):
            path = self.tmp_path / f"own-{len(list(self.tmp_path.iterdir()))}.db"
            store = HistoryStore(SQLiteBackend(str(path)), **options)
            print("OWN", store.description)
            return store
    """
)


def test_a_third_party_subclass_of_the_conformance_suite_runs(tmp_path: Path) -> None:
    (tmp_path / "test_backend.py").write_text(THIRD_PARTY, encoding="utf-8")
    run = _pytest(tmp_path, "--eventstore-backend=memory", "-rs")
    assert run.returncode == 0, run.stdout + run.stderr
    from eventstore.testing.conformance import HistoryStoreConformance

    tests = [name for name in dir(HistoryStoreConformance) if name.startswith("test_")]
    assert len(tests) >= 25
    # Every test of the suite was collected for both subclasses (each
    # parametrised test counts once per case, hence at least).
    passed = int(run.stdout.split(" passed")[0].split()[-1])
    assert passed + 1 >= 2 * len(tests)
    assert "OWN sqlite " in run.stdout
    # Neither the base class nor anything of the project's own tests ran.
    assert "HistoryStoreConformance::" not in run.stdout
    # Without a reopen_store hook (the in-memory store cannot be reopened, and
    # the plugin knows nothing of the own backend's stores) that one test is
    # skipped, and says why.
    assert "2 skipped" in run.stdout and "cannot be reopened" in run.stdout
    assert "no other handle on a store this factory did not open" in run.stdout
