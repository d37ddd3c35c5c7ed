"""`eventstore schema diff | check | export`: event schema catalogs and compatibility."""

from __future__ import annotations

import json
import os
import sys

import click

from ..evolution.schema import CATALOG_IDS, CURRENT, catalog_json, diff, load_catalog
from ..evolution.schema import check as check_store
from .app import main
from .core import TARGET, open_store, out, progress_bar


@main.group(name="schema")
def schema_group() -> None:
    """Event schema catalogs: diff two, check a store, export one."""


@schema_group.command(name="diff")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.option(
    "--mode",
    type=click.Choice(["backward", "full"]),
    default="backward",
    show_default=True,
    help="backward: new readers read old data; full: old readers must read new data too.",
)
def schema_diff(old: str, new: str, mode: str) -> None:
    """Classify the change from catalog OLD to NEW: identical, additive or breaking.

    OLD and NEW are catalog files (as `schema export` writes them) or the id of
    a shipped catalog (V0a, V0b, V1-base, V1-session, V1-tag, V1-carry-forward,
    V1-core, V1). Prints the classification, then one line per change with its reason;
    exits 1 when the change is breaking.
    """
    for source in (old, new):
        if source not in CATALOG_IDS and not os.path.exists(source):
            raise click.ClickException(
                f"{source!r} is neither a catalog file nor a shipped catalog id"
                f" (one of {', '.join(CATALOG_IDS)})"
            )
    result = diff(
        load_catalog(old), load_catalog(new), mode="full" if mode == "full" else "backward"
    )
    for line in result.lines():
        click.echo(line)
    if result.classification == "breaking":
        sys.exit(1)


@schema_group.command(name="check")
@TARGET
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def schema_check(target: str, as_json: bool) -> None:
    """Check the code's catalog against every generation stored in TARGET.

    Each breaking change on the way from a stored generation to the current
    one is listed with the registered migrations that cover it; exits 1 when
    one has none. A store that opened a dual-write window also shows its
    write generation and how many rows have a shadow (V1) form.
    """
    with open_store(target, readonly=True) as store:
        with progress_bar("schema check", store.count()) as advance:
            report = check_store(store, progress=advance)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "ok": report.ok,
                        "catalog": report.catalog,
                        "rows": report.rows,
                        "generations": dict(report.generations),
                        "by_generation": dict(report.generations),
                        "undecodable": report.undecodable,
                        "recorded": report.recorded,
                        "window": report.window._asdict() if report.window else None,
                        "hops": [
                            {
                                "source": hop.source,
                                "target": hop.target,
                                "classification": hop.diff.classification,
                                "changes": [
                                    {
                                        "change": str(c.change),
                                        "severity": c.change.severity,
                                        "migrations": list(c.migrations),
                                        "note": c.note,
                                    }
                                    for c in hop.coverage
                                    if c.change.severity == "breaking"
                                ],
                            }
                            for hop in report.hops
                        ],
                    }
                )
            )
        else:
            for line in report.lines():
                click.echo(line)
        if report.ok:
            if not as_json:
                out.print("OK: every breaking change is covered by a migration")
            return
        report.raise_if_uncovered()  # SchemaEvolutionError: one line, exit 1


@schema_group.command(name="export")
@click.option(
    "--generation",
    type=click.Choice(list(CATALOG_IDS)),
    default=CURRENT,
    show_default=True,
    help="Which generation's catalog.",
)
def schema_export(generation: str) -> None:
    """Print a catalog (JSON Schema of every event type), generated from the code."""
    click.echo(catalog_json(generation), nl=False)
