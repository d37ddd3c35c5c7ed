"""`eventstore ui`: a local, read-only web viewer of a store (the `ui` extra).

Layer 6 (a use of the store): everything here goes through `HistoryStore`
and never talks SQL. The command (`eventstore.cli.ui`) opens the target and
hands the store to `create_app`; `ViewerServer` serves it with uvicorn on a
socket the caller bound (loopback by default). The pages and their script
and style ship in `static/` (package data): nothing is fetched from a CDN and
nothing is built. proposals/viewer.md describes it.

Needs Starlette and uvicorn (`pip install 'eventstore[ui]'`); importing this
package without them raises ImportError, which the command turns into one
line saying what to install.
"""

from __future__ import annotations

from .app import LOOPBACK_HOSTS, create_app
from .server import ViewerServer

__all__ = ["LOOPBACK_HOSTS", "ViewerServer", "create_app"]
