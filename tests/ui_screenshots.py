"""The screenshots of proposals/viewer.md, taken again: `python -m tests.ui_screenshots DIR`.

Seeds a throwaway store with tests/ui_histories.py, serves it as `eventstore
ui` does and has Debian's Chromium photograph the pages a person looks at.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import eventstore
from eventstore.ui import ViewerServer, create_app
from eventstore.ui.server import bind_socket

from .ui_browser import chromium
from .ui_histories import LEGACY_INSTANCE, seed

SHOTS = (
    ("viewer-list.png", "/?size=8", 560),
    ("viewer-execution.png", "/execution?" + urlencode({"instance": "order-1"}), 900),
    ("viewer-legacy.png", "/execution?" + urlencode({"instance": LEGACY_INSTANCE}), 620),
    ("viewer-running.png", "/execution?" + urlencode({"instance": "waiting-1"}), 520),
)


def take(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    taken = []
    with tempfile.TemporaryDirectory() as scratch:
        path = str(Path(scratch) / "store.db")
        with eventstore.open(path) as writer:
            seed(writer)
        with (
            eventstore.open(path, readonly=True) as store,
            ViewerServer(
                create_app(store, title="orders.db"), bind_socket("127.0.0.1", 0)
            ) as server,
            chromium() as browser,
        ):
            page = browser.new_page()
            for name, address, height in SHOTS:
                page.set_viewport_size({"width": 1200, "height": height})
                page.goto(server.url.rstrip("/") + address)
                page.wait_for_selector("#executions, #events")
                taken.append(directory / name)
                page.screenshot(path=str(taken[-1]))
    return taken


if __name__ == "__main__":
    for shot in take(Path(sys.argv[1] if len(sys.argv) > 1 else "proposals/images")):
        print(shot)
