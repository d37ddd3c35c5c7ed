"""Metric families held in plain Python values, each capped in series.

prometheus_client's own Counter / Histogram take a lock per update; the
exporter applies hundreds of thousands of events per second, all under one
lock of its own, so the values live in plain objects and StoreMetrics is the
registry's Collector, rendering them on scrape.

A family holds at most `max_series` children (label combinations). Once it
is one short of that, every new combination goes to one overflow child whose
label values are all OTHER, so the family never renders more than
`max_series` series and no observation is lost: the totals over the family
stay exact, only the split by label is coarser.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric as Metric_

from .limits import DEFAULT_MAX_SERIES, OTHER

__all__ = ["CounterFamily", "Family", "HistogramFamily", "MaxGaugeFamily"]


class _CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class _HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: the first bound >= value, i.e. the `le` bucket it belongs to.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class _MaxChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def observe(self, value: float) -> None:
        if value > self.value:
            self.value = value


class Family:
    """One metric family: its name, help, label names and labelled children."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], Any] = {}
        self.max_series = DEFAULT_MAX_SERIES
        self._overflow_key = tuple(OTHER for _ in self.labelnames)
        self._on_overflow: Callable[[str], None] | None = None

    def limit(self, max_series: int, on_overflow: Callable[[str], None] | None = None) -> None:
        """Cap the series; `on_overflow(name)` is told of every observation folded."""
        if type(max_series) is not int or max_series < 2:
            raise ValueError(
                f"max_series must be an integer of at least 2 (one series is the overflow), "
                f"not {max_series!r}"
            )
        self.max_series = max_series
        self._on_overflow = on_overflow

    def _new_child(self) -> Any:
        raise NotImplementedError

    def labels(self, *values: str) -> Any:
        return self.child(values)[0]

    def child(self, values: tuple[str, ...]) -> tuple[Any, bool]:
        """The child for `values`, and whether it is the overflow child instead."""
        child = self.children.get(values)
        if child is not None:
            return child, False
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, not {values}")
        key = values
        # One slot stays free for the overflow child, so the cap holds with it.
        if len(self.children) >= self.max_series - 1 and values != self._overflow_key:
            key = self._overflow_key
            if self._on_overflow is not None:
                self._on_overflow(self.name)
            child = self.children.get(key)
            if child is not None:
                return child, True
        child = self.children[key] = self._new_child()
        return child, key is not values

    def render(self) -> Metric_:
        raise NotImplementedError


class CounterFamily(Family):
    def _new_child(self) -> _CounterChild:
        return _CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        """For a family without labels."""
        self.labels().inc(amount)

    def render(self) -> Metric_:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if not self.labelnames and not self.children:
            family.add_metric((), 0.0)
        for values, child in self.children.items():
            family.add_metric(values, child.value)
        return family


class HistogramFamily(Family):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        bounds: Sequence[float] = (),
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.bounds = tuple(float(b) for b in bounds)
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"{name}: bucket bounds must increase")
        self._les = [repr(b) for b in self.bounds] + ["+Inf"]  # as prometheus_client spells them

    def _new_child(self) -> _HistogramChild:
        return _HistogramChild(self.bounds)

    def observe(self, value: float) -> None:
        """For a family without labels."""
        self.labels().observe(value)

    def render(self) -> Metric_:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        children = self.children
        if not self.labelnames and not children:
            children = {(): _HistogramChild(self.bounds)}
        for values, child in children.items():
            cumulative = 0
            buckets = []
            for le, count in zip(self._les, child.counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric(values, buckets, child.sum)
        return family


class MaxGaugeFamily(Family):
    """A gauge of the largest value observed per series (e.g. the largest payload)."""

    def _new_child(self) -> _MaxChild:
        return _MaxChild()

    def render(self) -> Metric_:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children.items():
            family.add_metric(values, child.value)
        return family
