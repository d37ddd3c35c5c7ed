"""The `eventstore` command line. Nothing in the library imports this package.

Each feature's commands live in a module of their own and are attached to
`main` here. Expected failures (EventStoreError, unreadable files) print one
clear line on stderr and exit 1; they never show a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from .. import __version__
from ..errors import EventStoreError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EventStoreError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="eventstore")
def main() -> None:
    """Append-only store for durable-orchestration histories (duroxide wire format).

    TARGET is a SQLite file path, sqlite:///relative/path, sqlite:////absolute/path,
    :memory:, or a postgresql:// URL.
    """


from . import copy, core, metrics, migrate, query, replay, schema  # noqa: E402, F401  (commands register themselves on `main`)

__all__ = ["main", "core"]
