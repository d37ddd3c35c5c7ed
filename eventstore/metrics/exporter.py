"""The metrics exporter: tails a store's global feed into `StoreMetrics`.

`FeedExporter.poll` reads the rows added since the last position, a page
at a time, decodes them with the store's codec and feeds them to the
metrics: a page of plain V1 rows as the store packs it, decoded in one call
(`store.feed.plain_page_sized`, with each row's stored size), any other
page row by row through the store's row check (`read_all_raw` and
`decode_raw`), which also names the rows that do not decode.
After the first catch-up the work per poll is proportional to the rows
added since the previous one, never to the store's size. A row that does not
decode is counted, logged with its location, and skipped; the exporter keeps going.

`serve` runs the loop behind `eventstore metrics serve`: an HTTP server
answering `/metrics` (loopback by default; `eventstore.metrics.server`), a
poll every interval (or sooner when the store can wait), and a clean stop on
SIGTERM / SIGINT.
Backend-neutral: where `store.can_wait_for_events` (PostgreSQL's LISTEN/NOTIFY),
the loop uses `store.wait_for_events` to wake as soon as rows after its
position commit; elsewhere it polls at the interval.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from ..codec import Generation
from ..errors import DecodeError, EventStoreError
from ..sizes import utf8_len
from ..store import HistoryStore
from ..store.feed import plain_page_sized
from ..store.protocol import RawRow
from .feed_lag import FeedLag
from .server import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_WAITING,
    MetricsServer,
)
from .store_metrics import StoreMetrics

__all__ = ["DEFAULT_BIND", "DEFAULT_PORT", "FeedExporter", "MetricsServer", "PollResult", "serve"]

DEFAULT_BIND: Final = "127.0.0.1"
DEFAULT_PORT: Final = 9464
DEFAULT_PAGE: Final = 5000
log = logging.getLogger("eventstore.metrics.exporter")

Waiter = Callable[[int, float], object]
"""wait(after_position, timeout_seconds): returns when rows after the position may exist."""


@dataclass(frozen=True, slots=True)
class PollResult:
    rows: int
    """Rows read (decoded or not)."""
    undecodable: int
    position: int
    """The feed position the next poll resumes after."""


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic collector while the feed is read and applied.

    A page allocates tens of thousands of short-lived, acyclic objects (rows,
    events); the collector's generation-0 passes over them cost ~7% of a
    catch-up and find nothing. Reference counting still frees everything.
    Paused around the fetch as well (the rows are tuples the collector
    tracks): 2% fewer instructions per event than pausing per page.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class FeedExporter:
    """Tails the store's feed into a `StoreMetrics`, remembering the position.

    `metrics_factory` builds the metrics (on the exporter's registry); it is
    called again, after the old metrics are unregistered, if the store's
    positions were renumbered (VACUUM on a duroxide-created SQLite table), and
    the feed is then re-read from the start: counters restart from zero,
    which Prometheus reads as a counter reset.
    """

    def __init__(
        self,
        store: HistoryStore,
        registry: CollectorRegistry | None = None,
        *,
        metrics_factory: Callable[[CollectorRegistry], StoreMetrics] | None = None,
        page: int = DEFAULT_PAGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if page < 1:
            raise ValueError("page must be at least 1")
        self.store = store
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._factory = metrics_factory or (lambda r: StoreMetrics(r))
        self.metrics = self._factory(self.registry)
        self.page = page
        self.position = 0
        self._last_key: tuple[str | bytes, int, int] | None = None
        self.lock = threading.Lock()
        """Held while a page is applied and while the exposition is rendered, so a
        scrape never sees half a page."""
        r = self.registry
        self.lag = FeedLag(r, clock=clock)
        """`eventstore_feed_lag_seconds` (eventstore.metrics.feed_lag)."""
        self.last_error: str | None = None
        """Why the last poll of the serving loop failed; None after a good one."""
        self._position_gauge = Gauge(
            "eventstore_exporter_feed_position",
            "The feed position the exporter has read up to.",
            registry=r,
        )
        self._rows = Counter(
            "eventstore_exporter_rows_read",
            "Feed rows read by the exporter (decoded or not).",
            registry=r,
        )
        self._poll_seconds = Histogram(
            "eventstore_exporter_poll_duration_seconds",
            "Wall time of one poll of the feed.",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0),
            registry=r,
        )
        self._resets = Counter(
            "eventstore_exporter_feed_resets",
            "Times the feed was re-read from the start because positions were renumbered.",
            registry=r,
        )

    # -- polling ---------------------------------------------------------------

    def _renumbered(self) -> bool:
        if self._last_key is None or self.store.stable_positions:
            return False
        return self.store.key_at(self.position) != self._last_key

    def _restart(self) -> None:
        log.warning(
            "feed position %d no longer holds the event read there (positions renumbered, "
            "e.g. by VACUUM); re-reading the feed from the start",
            self.position,
        )
        self.metrics.unregister()
        self.metrics = self._factory(self.registry)
        self.position = 0
        self._last_key = None
        self._resets.inc()

    def poll(self, *, stop: threading.Event | None = None) -> PollResult:
        """Read and apply every row after the current position (page by page)."""
        started = time.perf_counter()
        rows_read = undecodable = 0
        with self.lock:
            if self._renumbered():
                self._restart()
        with _no_gc():
            while stop is None or not stop.is_set():
                count, bad = self._next_page()
                rows_read += count
                undecodable += bad
                if count < self.page:
                    break
        # What the store's feed holds back behind open transactions
        # (PostgreSQL's snapshot horizon) is lag too: the feed lag is never
        # less than the age of the oldest such event.
        _, held_age = self.store.feed_held_back()
        self.lag.hold_back(held_age or 0.0)
        self._poll_seconds.observe(time.perf_counter() - started)
        return PollResult(rows_read, undecodable, self.position)

    def _next_page(self) -> tuple[int, int]:
        """Read and apply the page after the position: (rows read, rows not decoded).

        The store's packed page where it has one (SQLite, every row plain V1:
        one decode for the page); else the rows, row by row through the one
        row check, which also names the rows that do not decode.
        """
        started = self.lag.clock()
        count, bad = self._read_page()
        self.lag.read(started, count, reached_head=count < self.page)
        return count, bad

    def _read_page(self) -> tuple[int, int]:
        sized = plain_page_sized(self.store, self.position, self.page)
        if sized is not None:
            (positions, instance_ids, execution_ids, events), sizes = sized
            if positions:
                with self.lock:
                    self.metrics.track_page(instance_ids, execution_ids, events, sizes)
                    self.metrics.decoded(Generation.V1, len(events))
                    key = (instance_ids[-1], execution_ids[-1], events[-1].event_id)
                    self._advance(positions[-1], key, len(positions))
            return len(positions), 0
        rows = list(self.store.read_all_raw(self.position, self.page, page=self.page))
        if not rows:
            return 0, 0
        with self.lock:
            bad = self._apply_rows(rows)
            last = rows[-1]
            self._advance(
                last.position, (last.instance_id, last.execution_id, last.event_id), len(rows)
            )
        return len(rows), bad

    def _advance(self, position: int, key: tuple[str | bytes, int, int], rows: int) -> None:
        self.position = position
        self._last_key = key
        self._rows.inc(rows)
        self._position_gauge.set(position)

    def _apply_rows(self, rows: list[RawRow]) -> int:
        """Row by row through the store's row check (legacy rows, bad rows)."""
        metrics = self.metrics
        decode = self.store.decode_raw
        counts = dict.fromkeys(Generation, 0)
        bad = 0
        with metrics.batch() as track:
            for row in rows:
                try:
                    decoded = decode(row)
                except DecodeError as exc:
                    bad += 1
                    assert exc.location is not None
                    metrics.decode_failed(exc.location)
                    log.warning("skipping undecodable row at %s: %s", exc.location, exc.message)
                    continue
                counts[decoded.generation] += 1
                data = row.event_data
                size = len(data) if isinstance(data, bytes) else utf8_len(data)
                track(row.instance_id, row.execution_id, decoded.event, size)
            for generation, count in counts.items():
                metrics.decoded(generation, count)
        return bad

    # -- exposition ------------------------------------------------------------

    def health(self) -> tuple[bool, bytes]:
        """What `/healthz` answers: healthy unless the last poll failed (JSON body)."""
        body = {
            "status": "ok" if self.last_error is None else "failing",
            "store": self.store.description,
            "position": self.position,
            "feed_lag_seconds": self.lag.seconds(),
            "error": self.last_error,
        }
        return self.last_error is None, json.dumps(body).encode() + b"\n"

    def exposition(self) -> bytes:
        """The text exposition format (what `/metrics` answers)."""
        with self.lock:
            return generate_latest(self.registry)


def backend_waiter(store: HistoryStore) -> Waiter | None:
    """The store's wait for new rows, where it can wait without polling (PostgreSQL)."""
    return store.wait_for_events if store.can_wait_for_events else None


def serve(
    exporter: FeedExporter,
    *,
    bind: str = DEFAULT_BIND,
    port: int = DEFAULT_PORT,
    interval: float = 1.0,
    stop: threading.Event,
    on_ready: Callable[[MetricsServer, PollResult, float], None] | None = None,
    wait: Waiter | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_waiting: int = DEFAULT_MAX_WAITING,
) -> None:
    """Catch up, then serve `/metrics` and poll until `stop` is set.

    The first catch-up runs before the server answers, so no scrape sees a
    half-read store. Store errors during a poll (a busy or briefly unavailable
    database) are logged and retried at the next interval.
    """
    started = time.perf_counter()
    first = exporter.poll(stop=stop)
    if stop.is_set():
        return
    server = MetricsServer(
        exporter,
        bind,
        port,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_waiting=max_waiting,
    )
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    try:
        if on_ready is not None:
            on_ready(server, first, time.perf_counter() - started)
        while not stop.is_set():
            if wait is None:
                stop.wait(interval)
            else:
                try:
                    wait(exporter.position, interval)
                except EventStoreError as exc:
                    log.error("waiting for new events failed (polling instead): %s", exc)
                    stop.wait(interval)
            if stop.is_set():
                break
            _poll_once(exporter, stop, spin_guard=interval / 10 if wait is not None else None)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _poll_once(exporter: FeedExporter, stop: threading.Event, *, spin_guard: float | None) -> None:
    """One poll of the serving loop; a store error is logged, kept for `/healthz`
    and retried at the next interval."""
    try:
        result = exporter.poll(stop=stop)
    except EventStoreError as exc:
        log.error("reading the feed failed (will retry): %s", exc)
        exporter.last_error = str(exc)
        return
    exporter.last_error = None
    if spin_guard is not None and result.rows == 0:
        # The wait woke without new rows: never spin on it.
        stop.wait(spin_guard)
