"""The `eventstore` command line. Nothing in the library imports this package.

Each feature's commands live in a module of their own and are attached to
`main` (eventstore.cli.app), imported here. Expected failures
(EventStoreError, unreadable files) print one clear line on stderr and exit 1;
they never show a traceback.
"""

from __future__ import annotations

from . import (  # noqa: F401  (commands register themselves on `main`)
    copy,
    core,
    cutover,
    dashboard,
    lifecycle,
    listing,
    metrics,
    migrate,
    query,
    replay,
    schema,
    show,
    sizes,
    traces,
    transfer,
    ui,
)
from .app import main

__all__ = ["core", "main"]
