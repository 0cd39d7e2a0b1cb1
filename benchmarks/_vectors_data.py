"""The vector benchmarks' data and measuring helpers (``bench_vectors*.py``).

``real()``: the 10,000 x 384 development embeddings with their true
neighbours; ``big()``: those rows tiled to 100,000 with noise (see
``bench_vectors.py``). ``ratio_info`` records same-run speedups against peers,
timed interleaved round by round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _numba_threads import numba_threads

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dev"
K = 10


def _need_data() -> None:
    if not (DATA / "embeddings.npy").exists():
        pytest.skip(f"real embeddings not found at {DATA}")


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    faiss = None
    try:
        import faiss

        faiss.omp_set_num_threads(1)
        # faiss 1.15 computes exact inner products with BLAS only above 128,000
        # queries by default; below it, every query streams the whole database,
        # which is memory-bound once the database leaves the cache (the 100k set).
        # Batches of 20+ queries with BLAS are faiss's best exact configuration.
        blas_threshold = faiss.cvar.distance_compute_blas_threshold
        faiss.cvar.distance_compute_blas_threshold = 20
    except ImportError:
        pass
    with numba_threads(1):
        yield
    if faiss is not None:
        faiss.cvar.distance_compute_blas_threshold = blas_threshold


@cache
def real() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.load(DATA / "embeddings.npy")
    return x, np.load(DATA / "neighbours.npy"), np.load(DATA / "neighbour_sims.npy")


@cache
def big() -> np.ndarray:
    x = real()[0]
    rng = np.random.default_rng(0)
    copies = [x] + [x + rng.normal(0, 0.01, x.shape).astype(np.float32) for _ in range(9)]
    out = np.concatenate(copies)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def recall_at_10(ids: np.ndarray) -> float:
    """Recall@10 of result ids for queries 0..n-1 on the real set (self excluded, ties allowed)."""
    x, _, sims = real()
    hits = 0
    for a in range(ids.shape[0]):
        got = [i for i in ids[a].tolist() if i != a and i >= 0][:K]
        hits += int(((x[got] @ x[a]) >= sims[a, K - 1] - 1e-6).sum())
    return hits / (ids.shape[0] * K)


def interleaved_medians(fns: dict[str, Callable[[], Any]], rounds: int = 7) -> dict[str, float]:
    """Median seconds of each function, calls interleaved round by round.

    On a shared machine the load drifts; alternating the candidates inside
    each round exposes them to the same conditions, so their ratio is fair.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def run(benchmark, fn: Callable[[], Any], rounds: int = 5) -> Any:
    fn()  # JIT warm-up (and cache load) outside the timing
    return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)


def measured(benchmark) -> bool:
    return getattr(benchmark, "stats", None) is not None and not getattr(benchmark, "disabled", False)


def ratio_info(
    benchmark, ours: Callable[[], Any], peers: dict[str, Callable[[], Any]], nbytes: int | None = None, rounds: int = 7
) -> None:
    """Store ``speedup_vs_<peer>`` (peer median / ours, interleaved in this run) and GB/s in ``extra_info``."""
    if not measured(benchmark):  # --benchmark-disable: a smoke run, nothing measured
        return
    medians = interleaved_medians({"ours": ours, **peers}, rounds)
    if nbytes:
        benchmark.extra_info["GB/s"] = round(nbytes / medians["ours"] / 1e9, 2)
    for name in peers:
        benchmark.extra_info[f"speedup_vs_{name}"] = round(medians[name] / medians["ours"], 2)


def median_of(benchmark) -> float | None:
    return float(benchmark.stats.stats.median) if measured(benchmark) else None


def _faiss():
    return pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install 'memstrata[bench]')")
