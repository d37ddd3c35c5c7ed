"""Serving the viewer with uvicorn on a socket the caller bound.

The caller binds the socket (so a port in use is its OSError, said in one
line, and port 0 gives a free port whose number is known before serving).
`serve_forever` runs in the calling thread until Ctrl-C (the command);
`start`/`stop` run it in a thread of its own (tests, screenshots).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import uvicorn

__all__ = ["ViewerServer", "bind_socket"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ViewerServer:
    """uvicorn serving `app` on `sock` (which it closes when done)."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.sock = sock
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", server_header=False
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def serve_forever(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start(self) -> ViewerServer:
        self._thread = threading.Thread(
            target=self.serve_forever, name="eventstore-ui", daemon=True
        )
        self._thread.start()
        started = threading.Event()
        while not self.server.started and self._thread.is_alive():
            started.wait(0.01)
        if not self.server.started:
            raise RuntimeError("the viewer's server did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
