"""`eventstore ui`: serve the read-only web viewer of a store or an export file."""

from __future__ import annotations

import ipaddress
from typing import Any

import click

from .._words import plural
from ..store import HistoryStore
from .app import main
from .core import TARGET, err, open_store
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
        missing = (exc.name or "a dependency").partition(".")[0]
        raise click.ClickException(_MISSING_EXTRA.format(missing=missing)) from None
    return ui


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load_export(path: str) -> HistoryStore:
    """An export file (JSON lines) read into an in-memory store; rows that do not
    import are left out and counted (the viewer shows what can be shown)."""
    store = open_store(":memory:", readonly=False)
    try:
        report = store.import_located(_read_jsonl(path), skip_corrupt=True)
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
    try:
        sock = bind_socket(bind, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {bind}:{port}: {exc.strerror or exc}"
        ) from None
    try:
        if _is_jsonl(target):
            store, title = _load_export(target), f"{target} (export file, read into memory)"
        else:
            store, title = open_store(target, readonly=True), None
    except BaseException:
        sock.close()  # serve_forever closes it once serving
        raise
    with store:
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
        err.print(
            f"viewer of {title or store.description} at {server.url} (Ctrl-C stops)",
            markup=False,
            soft_wrap=True,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:  # uvicorn shuts down, then passes Ctrl-C on
            err.print("viewer stopped")
