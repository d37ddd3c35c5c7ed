"""The `eventstore` click group: `main`, and how it turns expected failures into one line.

Command modules attach themselves to `main` (imported from here, not from the
package, so that no command module imports the package that imports it).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from .. import __version__
from ..errors import EventStoreError


class _Group(click.Group):
    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            try:
                return super().main(*args, **kwargs)
            finally:
                sys.stdout.flush()  # a pipe closed early shows here, if not before
        except BrokenPipeError:
            # The reader (`| head`) has all it wanted: end quietly. stdout goes
            # to devnull so the interpreter's own flush at exit cannot fail
            # again (the recipe of Python's signal module documentation).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # not an error to report: see main
        except EventStoreError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None


class DefaultGroup(click.Group):
    """A group whose first argument, when it names no subcommand, goes to `default`.

    `eventstore shards TARGET` shows the manifest, `eventstore shards rebase
    TARGET` rebases (`migrations TARGET` and `migrations prune TARGET` alike):
    a target is mistaken for a subcommand only when spelled exactly like one
    (write ./rebase then).
    """

    default = "show"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        helping = any(a in ("-h", "--help") for a in args)
        if args and args[0] not in self.commands and not (helping and len(args) == 1):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


# Subcommands inherit the help option names from the group's context.
@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eventstore")
def main() -> None:
    """Append-only store for durable-orchestration histories (duroxide wire format).

    TARGET is a SQLite file path, sqlite:///relative/path, sqlite:////absolute/path,
    :memory:, or a postgresql:// URL.
    """


__all__ = ["DefaultGroup", "main"]
