"""`eventstore_feed_lag_seconds`: how far a feed reader trails the store it reads.

A property of the reader, not of a backend. The reader reports each page it
reads (`FeedLag.read`: when the read started, how many rows it returned,
whether it reached the end of the feed as the reader can see it); a reader
that sees rows but deliberately withholds them (PostgreSQL's snapshot
horizon: rows of transactions still in flight below it) reports the age of
the oldest withheld row with `hold_back`. The lag is then

* 0 while the last read reached the end of the feed and withheld nothing;
* once a read returns rows, the reader has been behind at least since the
  start of the last read that reached the end (those rows were not there
  then): the lag is the time since that read, until a read reaches the end
  again (a catch-up of many pages shows a lag that grows, then drops to 0);
* never less than the hold-back.

Between reads the lag is what the last read established: rows committed since
then are seen, and counted, at the next read (the exporter reads every
`--interval`, or at once on PostgreSQL's LISTEN).

No labels: one reader, one series, nothing from stored data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

__all__ = ["FEED_LAG", "FeedLag"]

FEED_LAG: Final = "eventstore_feed_lag_seconds"


class FeedLag:
    """The lag of one feed reader (see the module); a Collector on its registry."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._last_head: float | None = None
        self._behind_since: float | None = None
        self._held_back = 0.0
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def read(self, started: float, rows: int, *, reached_head: bool) -> None:
        """A read that started at `started` (this clock) returned `rows` rows."""
        with self._lock:
            if rows and self._behind_since is None:
                self._behind_since = self._last_head if self._last_head is not None else started
            if reached_head:
                self._behind_since = None
                self._last_head = started

    def hold_back(self, seconds: float) -> None:
        """The age of the oldest row the reader has seen but withholds (0: none)."""
        with self._lock:
            self._held_back = max(0.0, float(seconds))

    def seconds(self) -> float:
        with self._lock:
            behind = 0.0 if self._behind_since is None else self.clock() - self._behind_since
            return max(behind, self._held_back)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            FEED_LAG,
            "How far the exporter's reading of the global feed trails the store, in seconds "
            "(0 when its last read reached the end of the feed and withheld nothing).",
            value=self.seconds(),
        )

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(FEED_LAG, "", value=0.0)
