"""Limits on what stored data can make the metrics grow to.

Two caps, both folding the excess into the label value OTHER:

* per label (`LabelLimiter`): the distinct values of each data-derived label
  (an activity name, a version), shared by every metric with that label;
* per metric (`DEFAULT_MAX_SERIES`, applied by the metric families): the
  label *combinations* of one metric. Capping labels alone does not bound a
  metric: 150 names x 150 versions are 22,500 series of one histogram, each
  under its label's cap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

__all__ = ["DEFAULT_MAX_LABEL_VALUES", "DEFAULT_MAX_SERIES", "OTHER", "UNKNOWN", "LabelLimiter"]

DEFAULT_MAX_LABEL_VALUES: Final = 200
"""Distinct values kept per data-derived label; more go to OTHER."""
DEFAULT_MAX_SERIES: Final = 2000
"""Series (label combinations) kept per metric, the overflow series included."""
OTHER: Final = "other"
"""The label value that overflowing values are folded into."""
UNKNOWN: Final = "unknown"
"""The label value for what the history cannot tell (e.g. a name whose start was not seen)."""


class LabelLimiter:
    """Caps the distinct values of each data-derived label.

    The first `limit` values seen for a label are kept; later new values
    become OTHER and each such occurrence is counted in
    `eventstore_label_overflow_total{label}`. Limits are per label name and
    shared by every metric that has that label.
    """

    def __init__(
        self,
        default: int = DEFAULT_MAX_LABEL_VALUES,
        limits: Mapping[str, int] | None = None,
        on_overflow: Callable[[str], None] | None = None,
    ) -> None:
        if default < 1 or any(v < 1 for v in (limits or {}).values()):
            raise ValueError("label value limits must be at least 1")
        self.default = default
        self.limits = dict(limits or {})
        self._seen: dict[str, set[str]] = {}
        self._on_overflow = on_overflow

    def __call__(self, label: str, value: str) -> str:
        seen = self._seen.get(label)
        if seen is None:
            seen = self._seen[label] = set()
        if value in seen:
            return value
        if len(seen) >= self.limits.get(label, self.default):
            if self._on_overflow is not None:
                self._on_overflow(label)
            return OTHER
        seen.add(value)
        return value

    def distinct(self, label: str) -> int:
        """How many distinct values `label` holds (OTHER not included)."""
        return len(self._seen.get(label, ()))
