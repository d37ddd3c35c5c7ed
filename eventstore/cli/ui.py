"""`eventstore ui`: serve the read-only web viewer of a store or an export file."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import click

from .._words import plural
from ..errors import Location
from ..store import HistoryStore
from .app import main
from .core import TARGET, err, open_store, progress_bar
from .replay import _is_jsonl
from .transfer import _read_jsonl

_MISSING_EXTRA = (
    "eventstore ui needs the 'ui' extra (Starlette and uvicorn), and {missing} is not"
    " installed: pip install 'eventstore[ui]'"
)


def _viewer() -> Any:
    """The eventstore.ui package, or one line saying what to install."""
    try:
        from .. import ui
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing in ("", "eventstore"):
            raise  # not a missing extra: a fault of ours, shown as such
        raise click.ClickException(_MISSING_EXTRA.format(missing=missing)) from None
    return ui


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load_export(path: str, scratch: str) -> HistoryStore:
    """An export file (JSON lines) read into a throwaway SQLite store in `scratch`
    (a file, not memory: an export of any size is read in constant memory).
    Rows that do not import are left out and counted: the viewer shows what can
    be shown, and `eventstore import` names every one."""
    store = open_store(os.path.join(scratch, "export.db"), readonly=False)
    try:
        with progress_bar(f"reading {path}", None) as advance:

            def rows() -> Iterator[tuple[Location, dict[str, Any]]]:
                for located in _read_jsonl(path):
                    advance()
                    yield located

            report = store.import_located(rows(), skip_corrupt=True)
    except BaseException:
        store.close()
        raise
    if report.corrupt:
        err.print(
            f"warning: {plural(len(report.corrupt), 'row')} of {path} left out (they do not"
            f" import; `eventstore import` names them): first: {report.corrupt[0]}",
            markup=False,
        )
    return store


def _open(target: str, stack: contextlib.ExitStack) -> tuple[HistoryStore, str]:
    """The store to view and its heading: a store read-only, or an export read in."""
    if _is_jsonl(target):
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="eventstore-ui-"))
        store = stack.enter_context(_load_export(target, scratch))
        return store, f"{target} (export file)"
    store = stack.enter_context(open_store(target, readonly=True))
    return store, store.description


@main.command(name="ui")
@TARGET
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback lets whoever reaches it read every history.",
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
def serve_viewer(target: str, bind: str, port: int) -> None:
    """Serve a read-only web viewer of TARGET (a store, or an export's JSON lines file).

    Lists executions (filters, search, paging) and shows each one's timeline and
    events; running executions update while you watch. Ctrl-C stops it.
    """
    ui = _viewer()
    from ..ui.server import bind_socket

    loopback = is_loopback(bind)
    with contextlib.ExitStack() as stack:
        try:
            sock = stack.enter_context(bind_socket(bind, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {bind}:{port}: {exc.strerror or exc}"
            ) from None
        store, title = _open(target, stack)
        app = ui.create_app(
            store, title=title, allowed_hosts=ui.LOOPBACK_HOSTS if loopback else ("*",)
        )
        server = ui.ViewerServer(app, sock)
        if not loopback:
            err.print(
                f"warning: listening on {bind}, not loopback: anyone who can reach it can"
                " read every history in this store",
                markup=False,
            )
        err.print(f"viewer of {title} at {server.url} (Ctrl-C stops)", markup=False, soft_wrap=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:  # uvicorn shuts down, then passes Ctrl-C on
            err.print("viewer stopped")
