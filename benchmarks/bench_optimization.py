"""The optimization layer's documented face costs nothing measurable over MemoryStore.

Goal (issue 15): ``OptimizationMiddleware`` per call <= 1.1x calling
``MemoryStore`` directly, same run, on the bundled real records. Groups
``optimization-store`` and ``optimization-retrieve``; each case records the
same-run ratio of the two alternately timed loops in ``extra_info``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from memstrata import MemoryStore
from memstrata.cli._demo import load_data
from memstrata.optimization import OptimizationConfig, OptimizationMiddleware

N = 500


@pytest.fixture(scope="module")
def records() -> list[tuple[str, dict[str, Any]]]:
    texts, _emb, _ = load_data(None, None)
    return [(f"text:{i}", {"id": t["id"], "source": t["source"], "text": t["text"]}) for i, t in enumerate(texts[:N])]


def _middleware() -> OptimizationMiddleware:
    config = OptimizationConfig.from_dict({"enabled": True, "tiered_storage": {"migration_interval_minutes": 0}})
    return OptimizationMiddleware(config=config)


def _direct(middleware: OptimizationMiddleware) -> MemoryStore:
    return MemoryStore(None, middleware.config.to_store_config())


def _alternate(a: Callable[[], None], b: Callable[[], None], rounds: int = 7) -> float:
    """Median of b's time over a's, timing the two alternately (noise hits both)."""
    ratios = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ratios.append((t2 - t1) / (t1 - t0))
    ratios.sort()
    return ratios[len(ratios) // 2]


@pytest.mark.parametrize("impl", ["memstrata-store", "optimization-middleware"])
def test_store(benchmark: Any, records: list[tuple[str, dict[str, Any]]], impl: str) -> None:
    middleware = _middleware()
    direct = _direct(middleware)

    def via_store() -> None:
        for k, v in records:
            direct.store(k, v)

    def via_middleware() -> None:
        for k, v in records:
            middleware.store(k, v)

    benchmark.group = "optimization-store"
    benchmark.extra_info["middleware_over_store"] = _alternate(via_store, via_middleware)
    benchmark(via_middleware if impl == "optimization-middleware" else via_store)
    middleware.shutdown()
    direct.close()


@pytest.mark.parametrize("impl", ["memstrata-store", "optimization-middleware"])
def test_retrieve(benchmark: Any, records: list[tuple[str, dict[str, Any]]], impl: str) -> None:
    middleware = _middleware()
    direct = _direct(middleware)
    for k, v in records:
        middleware.store(k, v)
        direct.store(k, v)
    keys = [k for k, _ in records]

    def via_store() -> None:
        for k in keys:
            direct.retrieve(k, None)

    def via_middleware() -> None:
        for k in keys:
            middleware.retrieve(k)

    benchmark.group = "optimization-retrieve"
    benchmark.extra_info["middleware_over_store"] = _alternate(via_store, via_middleware)
    benchmark(via_middleware if impl == "optimization-middleware" else via_store)
    middleware.shutdown()
    direct.close()
