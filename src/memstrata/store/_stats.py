"""One small statistics registry: counters, gauges and histograms."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Counter", "Histogram", "StatsRegistry"]


class Counter:
    """A monotonically increasing integer."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, n: int = 1) -> None:
        self.value += n


class Histogram:
    """Observations kept in a bounded reservoir (the most recent ``size``); quantiles on demand.

    >>> h = Histogram(size=100)
    >>> for x in range(1, 101): h.observe(x)
    >>> h.quantile(0.5), h.quantile(0.99), h.count
    (50, 99, 100)
    >>> for x in range(101, 151): h.observe(x)
    >>> h.quantile(0.01), h.quantile(1.0), h.count, h.total
    (51, 150, 150, 11325.0)
    """

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError(f"size: expected a positive integer, got {size}")
        self._size = size
        self._values: list[float] = [0.0] * size  # a ring: observation n lands in slot n % size
        self.count = 0
        self.total = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:  # every write path calls this: one slot store, no branch
            n = self.count
            self._values[n % self._size] = value
            self.count = n + 1
            self.total += value

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (nearest rank) of the reservoir, or None when empty."""
        with self._lock:
            values = sorted(self._values[: min(self.count, self._size)])
        if not values:
            return None
        i = min(len(values) - 1, max(0, int(q * len(values) + 0.5) - 1))
        return values[i]

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": self.total / self.count if self.count else None,
            "p50": self.quantile(0.5),
            "p99": self.quantile(0.99),
        }


class StatsRegistry:
    """Named counters, gauges (callables read on demand) and histograms.

    ``get_statistics()``, health checks and exports all read the same numbers.

    >>> reg = StatsRegistry()
    >>> reg.counter("writes").inc(3)
    >>> reg.gauge("items", lambda: 7)
    >>> reg.snapshot()["counters"]["writes"], reg.snapshot()["gauges"]["items"]
    (3, 7)
    """

    def __init__(self) -> None:
        self.counters: dict[str, Counter] = {}
        self.gauges: dict[str, Callable[[], Any]] = {}
        self.histograms: dict[str, Histogram] = {}

    def counter(self, name: str) -> Counter:
        c = self.counters.get(name)
        if c is None:
            c = self.counters[name] = Counter()
        return c

    def gauge(self, name: str, read: Callable[[], Any]) -> None:
        self.gauges[name] = read

    def histogram(self, name: str, size: int = 4096) -> Histogram:
        h = self.histograms.get(name)
        if h is None:
            h = self.histograms[name] = Histogram(size)
        return h

    def snapshot(self) -> dict[str, Any]:
        return {
            "counters": {n: c.value for n, c in self.counters.items()},
            "gauges": {n: g() for n, g in self.gauges.items()},
            "histograms": {n: h.summary() for n, h in self.histograms.items()},
        }
