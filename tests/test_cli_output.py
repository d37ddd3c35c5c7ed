"""How the command line behaves as a process: `python -m`, pipes, wrapping, help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import eventstore
from eventstore.cli import main
from eventstore.events import OrchestrationStarted


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventstore", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_python_dash_m_runs_the_command_line(tmp_path: Path) -> None:
    version = run_module("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"eventstore, version {eventstore.__version__}"
    db = tmp_path / "m.db"
    init = run_module("init", str(db))
    assert init.returncode == 0, init.stderr
    assert "ready:" in init.stdout and db.exists()
    usage = run_module("no-such-command")
    assert usage.returncode == 2
    assert "Usage: eventstore" in usage.stderr  # named like the script, not __main__.py


def script(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "eventstore"), *args]


def demo_store(tmp_path: Path) -> Path:
    db = tmp_path / "demo.db"
    done = subprocess.run(script("demo", str(db)), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return db


@pytest.mark.parametrize(
    "command",
    [["ls", "--json"], ["export"], ["schema", "diff", "V0a", "V1"], ["query", "--json"]],
    ids=["ls", "export", "schema-diff", "query"],
)
def test_a_pipe_closed_early_ends_the_command_quietly(tmp_path: Path, command: list[str]) -> None:
    db = demo_store(tmp_path)
    with eventstore.open(str(db)) as store:  # enough output to fill the pipe
        for n in range(300):
            store.append(
                f"bulk-{n:03}",
                1,
                [OrchestrationStarted(event_id=1, name="B", version="1", input="x" * 200)],
            )
    args = [*command[:1], *([] if command[0] == "schema" else [str(db)]), *command[1:]]
    if command[0] == "query":
        args.insert(2, "select * from history")
    child = subprocess.Popen(script(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline()
    child.stdout.close()  # as `| head -1` does
    stderr = child.stderr.read().decode()
    child.stderr.close()
    assert child.wait(timeout=120) in (0, 1)
    assert first.strip()
    assert stderr == ""  # no "Error: Broken pipe", no traceback


def test_piped_messages_are_not_wrapped(tmp_path: Path) -> None:
    db = demo_store(tmp_path)
    deep = tmp_path / ("d" * 100) / ("e" * 100)
    deep.mkdir(parents=True)
    output = deep / "export.jsonl"
    done = subprocess.run(
        script("export", str(db), "-o", str(output)), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    # One message, one line, however long (rich wrapped it at 80 columns).
    assert done.stderr.splitlines() == [f"exported {done.stderr.split()[1]} rows to {output}"]
    listed = subprocess.run(script("ls", str(db)), capture_output=True, text=True, check=False)
    assert listed.stdout.splitlines()[-1].endswith("instances")


def test_minus_h_is_help_everywhere() -> None:
    for args in (["-h"], ["ls", "-h"], ["schema", "-h"], ["schema", "diff", "-h"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert result.output.startswith("Usage: ")


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append(((*prefix, name), command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


def test_every_command_and_option_has_help_text() -> None:
    missing = []
    for path, command in _commands(main):
        if not (command.help or "").strip():
            missing.append(" ".join(path))
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert missing == []
    assert len(_commands(main)) > 15


def test_unsupported_schemes_and_catalog_ids_say_what_is_supported(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ls", "mysql://user:s3cr3t@host/db"])
    assert result.exit_code == 1
    assert "mysql:// is not a supported store" in result.output
    assert "postgresql://" in result.output and "s3cr3t" not in result.output
    result = CliRunner().invoke(main, ["schema", "diff", "V9", "V1"])
    assert result.exit_code == 1
    assert "'V9' is neither a catalog file nor a shipped catalog id" in result.output
    assert "V0a, V0b" in result.output


def test_counts_agree_with_their_nouns(tmp_path: Path) -> None:
    from eventstore._words import a, plural

    assert [plural(1, "batch"), plural(2, "batch"), plural(0, "problem")] == [
        "1 batch", "2 batches", "0 problems"
    ]  # fmt: skip
    assert (a("OrchestrationStarted"), a("TimerFired")) == (
        "an OrchestrationStarted",
        "a TimerFired",
    )
    db = tmp_path / "one.db"
    with eventstore.open(str(db)) as store:
        store.append("only", 1, [OrchestrationStarted(event_id=1, name="O", version="1", input="")])
    listed = CliRunner().invoke(main, ["ls", str(db)])
    assert "1 instance\n" in listed.output
    verified = CliRunner().invoke(main, ["verify", str(db)])
    assert "verified 1 row in 1 execution" in verified.output


def test_replay_imports_from_the_current_directory_only_when_told(tmp_path: Path) -> None:
    (tmp_path / "my_orchestrations.py").write_text("ORCHESTRATIONS = {}\n", encoding="utf-8")
    db = demo_store(tmp_path)
    base = script("replay", str(db), "-o", "my_orchestrations", "--skip-unregistered")
    silent = subprocess.run(base, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert silent.returncode == 1
    assert "cannot import 'my_orchestrations'" in silent.stderr
    told = subprocess.run(
        [*base, "--path", "."], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert told.returncode == 0, told.stderr
    helped = CliRunner().invoke(main, ["replay", "--help"])
    assert "runs with your rights" in " ".join(helped.output.split())
