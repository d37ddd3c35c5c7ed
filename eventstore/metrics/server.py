"""The exporter's HTTP server: bounded threads, and idle clients hold none.

A thread per connection lets idle clients grow the thread count (400 idle
clients were 402 threads), and a cap on handler threads alone lets a few idle
clients take every slot so that the scraper is refused. So a new connection
first waits in a *waiting room*: one selector on one thread, no thread of its
own. Only when its first bytes arrive does it take one of `max_connections`
handler slots (all taken: answered 503 at once, without a thread). A
connection that sends nothing for `idle_timeout` seconds is closed from the
room, and at most `max_waiting` wait at once (more are answered 503), so
neither threads nor file descriptors grow with the clients. A handler's
socket has the same timeout, so a client that stalls mid-request frees its
slot too.

Threads: the accept loop, the waiting room and at most `max_connections`
handlers. `server_close` closes every waiting connection and waits for the
handlers, so nothing outlives the server.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol

from prometheus_client import CONTENT_TYPE_LATEST

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_WAITING",
    "Exposition",
    "MetricsServer",
]

DEFAULT_IDLE_TIMEOUT: Final = 10.0
"""Seconds a connection may stay silent before the server closes it."""
DEFAULT_MAX_CONNECTIONS: Final = 16
"""Requests served at once (a thread each); more are answered 503."""
DEFAULT_MAX_WAITING: Final = 512
"""Connections waiting for their first bytes (no thread); more are answered 503."""
_BUSY: Final = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 1\r\nContent-Length: 34\r\nConnection: close\r\n\r\n"
    b"too many connections, retry later\n"
)
_GRACE_SECONDS: Final = 2.0
"""How long server_close lets running handlers finish before cutting their clients off."""

log = logging.getLogger("eventstore.metrics.exporter")


class Exposition(Protocol):
    """What the server answers `/metrics` from (a FeedExporter)."""

    def exposition(self) -> bytes: ...

    def health(self) -> tuple[bool, bytes]:
        """(healthy, a JSON body): what `/healthz` answers, 200 or 503."""
        ...


class _WaitingRoom:
    """Connections that have sent nothing yet, watched by one selector thread.

    `admit` is called from the accept loop; a connection leaves the room to
    `dispatch` when it becomes readable, or is closed by `discard` when its
    deadline passes or the room closes.
    """

    def __init__(
        self,
        dispatch: Callable[[socket.socket, Any], None],
        discard: Callable[[socket.socket], None],
        idle_timeout: float,
        capacity: int,
    ) -> None:
        self._dispatch = dispatch
        self._discard = discard
        self._timeout = idle_timeout
        self._capacity = capacity
        self._lock = threading.Lock()
        self._incoming: list[tuple[socket.socket, Any]] = []
        self._count = 0  # incoming and watched
        self._closed = False
        self._waiting: dict[socket.socket, tuple[Any, float]] = {}  # address, deadline
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        for end in (self._wake_r, self._wake_w):
            end.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="metrics-http-idle", daemon=True)
        self._thread.start()

    def admit(self, sock: socket.socket, address: Any) -> bool:
        """Take `sock` in; False (and the caller refuses it) when the room is full."""
        with self._lock:
            if self._closed or self._count >= self._capacity:
                return False
            self._count += 1
            self._incoming.append((sock, address))
        self._wake()
        return True

    def close(self) -> None:
        """Close every waiting connection and stop the thread."""
        with self._lock:
            self._closed = True
        self._wake()
        self._thread.join()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full or closed: the thread wakes anyway
            self._wake_w.send(b"\0")

    def _run(self) -> None:
        try:
            while self._take_incoming():
                for key, _ in self._selector.select(self._next_timeout()):
                    if key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    else:
                        sock: socket.socket = key.fileobj  # type: ignore[assignment]
                        self._dispatch(sock, self._leave(sock))
                self._expire(time.monotonic())
        finally:
            self._close_all()

    def _take_incoming(self) -> bool:
        """Watch the connections admitted since the last pass; False once closed."""
        with self._lock:
            if self._closed:
                return False
            incoming, self._incoming = self._incoming, []
        deadline = time.monotonic() + self._timeout
        for sock, address in incoming:
            self._waiting[sock] = (address, deadline)
            self._selector.register(sock, selectors.EVENT_READ)
        return True

    def _next_timeout(self) -> float | None:
        if not self._waiting:
            return None
        soonest = min(deadline for _, deadline in self._waiting.values())
        return max(soonest - time.monotonic(), 0.0)

    def _leave(self, sock: socket.socket) -> Any:
        self._selector.unregister(sock)
        address, _ = self._waiting.pop(sock)
        with self._lock:
            self._count -= 1
        return address

    def _expire(self, now: float) -> None:
        for sock in [s for s, (_, deadline) in self._waiting.items() if deadline <= now]:
            self._leave(sock)
            self._discard(sock)

    def _close_all(self) -> None:
        for sock in list(self._waiting):
            self._leave(sock)
            self._discard(sock)
        with self._lock:
            self._closed = True
            incoming, self._incoming = self._incoming, []
        for sock, _ in incoming:
            self._discard(sock)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def setup(self) -> None:
        # A client that stalls mid-request (or reads nothing) for that long
        # times out, and the connection closes with its thread.
        self.request.settimeout(self.server.idle_timeout)
        super().setup()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = self.server.exporter.exposition()
            except Exception:  # pragma: no cover - a bug, reported to the scraper
                log.exception("rendering the exposition failed")
                self.send_error(500)
                return
            self._send(200, CONTENT_TYPE_LATEST, body)
        elif path == "/healthz":
            healthy, body = self.server.exporter.health()
            self._send(200 if healthy else 503, "application/json", body)
        elif path == "/":
            self._send(
                200,
                "text/plain; charset=utf-8",
                b"eventstore metrics exporter: see /metrics and /healthz\n",
            )
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)


class MetricsServer(ThreadingHTTPServer):
    """An HTTP server answering `/metrics` from a FeedExporter (see the module)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the listen backlog: excess clients get their 503 quickly

    def __init__(
        self,
        exporter: Exposition,
        bind: str,
        port: int,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_waiting: int = DEFAULT_MAX_WAITING,
    ) -> None:
        if not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout!r}")
        for name, value in (("max_connections", max_connections), ("max_waiting", max_waiting)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self.exporter = exporter
        self.idle_timeout = float(idle_timeout)
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._handlers: dict[threading.Thread, socket.socket] = {}
        self._handlers_lock = threading.Lock()
        # Before listening: a bind that fails calls server_close, which stops it.
        self._room = _WaitingRoom(
            self._start, self.shutdown_request, self.idle_timeout, max_waiting
        )
        if ":" in bind:
            self.address_family = socket.AF_INET6
        super().__init__((bind, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # The accept loop never starts a thread: the connection waits for its bytes.
        if not self._room.admit(request, client_address):
            self._refuse(request)

    def _start(self, request: socket.socket, client_address: Any) -> None:
        """A waiting connection sent its first bytes: a handler slot, or 503."""
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="metrics-http-handler",
            daemon=True,
        )
        with self._handlers_lock:
            # Ended handlers are forgotten here; server_close joins the rest.
            self._handlers = {t: r for t, r in self._handlers.items() if t.is_alive()}
            self._handlers[thread] = request
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: it cannot release its slot
            with self._handlers_lock:
                del self._handlers[thread]
            self._slots.release()
            self._refuse(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            # The slot is free before the connection closes: a client that
            # has seen its connection end can count on its slot being free.
            self._slots.release()
            self.shutdown_request(request)

    def server_close(self) -> None:
        """Stop listening, close the waiting connections, end the handlers.

        socketserver does not wait for daemon handler threads, so a handler
        could still hold its connection after the server is gone. Each gets
        a grace period to finish its answer; a client still stalling after
        it is cut off (its socket shut down), which ends its handler at once.
        """
        super().server_close()
        self._room.close()
        with self._handlers_lock:
            running = list(self._handlers.items())
        deadline = time.monotonic() + _GRACE_SECONDS
        for thread, request in running:
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                with contextlib.suppress(OSError):  # closed already: nothing to cut
                    request.shutdown(socket.SHUT_RDWR)
                thread.join(_GRACE_SECONDS)
        with self._handlers_lock:
            self._handlers = {t: r for t, r in self._handlers.items() if t.is_alive()}

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away or stalled mid-response is not the
        # operator's problem: no traceback on stderr (socketserver's default).
        log.debug("connection from %s failed", client_address, exc_info=True)

    def _refuse(self, request: socket.socket) -> None:
        """503 without a thread; never blocks on a slow client."""
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(_BUSY)
        self.shutdown_request(request)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"http://{shown}:{port}/metrics"
