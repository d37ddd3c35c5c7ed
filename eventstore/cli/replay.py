"""`eventstore replay`: replay every stored execution against orchestration code."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from .._words import plural
from ..opening import open as open_store
from ..replay import ReplayReport, replay_all
from .app import main

_SQLITE_MAGIC = b"SQLite format 3\x00"


def _load_orchestrations(spec: str, paths: tuple[str, ...]) -> Mapping[Any, Any]:
    """`package.module` (exposing ORCHESTRATIONS) or `package.module:NAME`.

    Imported by name from sys.path as it is, plus the `--path` directories the
    caller named: the current directory is not added silently, so a stray
    module there cannot be picked up (and run) by accident."""
    module_name, _, attribute = spec.partition(":")
    for path in reversed(paths):
        sys.path.insert(0, os.path.abspath(path))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error of any kind is the user's to fix
        raise click.ClickException(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    found = getattr(module, attribute or "ORCHESTRATIONS", None)
    if not isinstance(found, Mapping):
        raise click.ClickException(
            f"{module_name!r} has no mapping {attribute or 'ORCHESTRATIONS'!r} "
            "of orchestration name to function"
        )
    return found


def _is_jsonl(target: str) -> bool:
    path = Path(target)
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC


@main.command()
@click.argument("target", metavar="TARGET")
@click.option(
    "--orchestrations",
    "-o",
    "spec",
    required=True,
    metavar="MODULE[:NAME]",
    help="Module exposing a mapping of orchestration name (or (name, version)) to "
    "function; ORCHESTRATIONS unless :NAME is given. It is imported, and so runs "
    "with your rights: name only code you trust.",
)
@click.option(
    "--path",
    "paths",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    metavar="DIR",
    help="Also import MODULE from this directory (repeatable; searched first). The "
    "current directory is not searched unless named, e.g. --path .",
)
@click.option(
    "--skip-unregistered",
    is_flag=True,
    help="Do not fail on executions of orchestrations the mapping does not name.",
)
@click.option(
    "--instance",
    "-i",
    "instances",
    multiple=True,
    metavar="ID",
    help="Replay only this instance (repeatable).",
)
@click.option("--verbose", "-v", is_flag=True, help="List every execution, not only failures.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per execution.")
def replay(
    target: str,
    spec: str,
    paths: tuple[str, ...],
    skip_unregistered: bool,
    instances: tuple[str, ...],
    verbose: bool,
    as_json: bool,
) -> None:
    """Replay every execution of TARGET (a store or a JSONL export) against code.

    Exits 1 when any execution does not replay to its stored history.
    """
    orchestrations = _load_orchestrations(spec, paths)
    options: dict[str, Any] = {
        "skip_unregistered": skip_unregistered,
        "instance_ids": instances or None,
    }
    if _is_jsonl(target):
        report = replay_all(target, orchestrations, **options)
    else:
        with open_store(target, readonly=True) as store:
            report = replay_all(store, orchestrations, **options)
    if as_json:
        for execution in report.executions:
            click.echo(json.dumps(execution.to_dict(), ensure_ascii=False))
    else:
        _print(report, verbose)
    if not report.ok:
        sys.exit(1)


def _print(report: ReplayReport, verbose: bool) -> None:
    out = Console(highlight=False, soft_wrap=True)
    failures = report.failures
    for execution in report.executions:
        if execution in failures or verbose:
            mark = "ok" if execution.ok else execution.outcome.upper()
            out.print(
                f"{escape(mark)}  {escape(execution.instance_id)} "
                f"execution {execution.execution_id} ({escape(execution.name or '?')}): "
                f"{escape(execution.message)}"
            )
    out.print(escape(report.summary()))
    if failures:
        out.print(f"{plural(len(failures), 'execution')} failed to replay")
