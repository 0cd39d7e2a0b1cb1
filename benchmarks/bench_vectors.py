"""Vector search (kernels and VectorMemory) against numpy references and peers (faiss, usearch, scipy).

Data
----
* ``real``: the 10,000 x 384 all-MiniLM-L6-v2 embeddings in ``../shared/data/dev``;
  queries are rows 0-999 and recall@10 is measured against ``neighbours.npy`` /
  ``neighbour_sims.npy`` (the query's own row excluded; a returned row counts
  when its exact similarity reaches the true 10th neighbour's, so ties among
  duplicate texts are not penalised).
* ``100k``: the real rows tiled 10 times; copy 0 is exact, copies 1-9 get
  independent Gaussian noise (sigma 0.01 per dimension, seed 0) and are
  re-normalised, which keeps the real per-dimension distributions while making
  every row distinct.

Everything runs single-threaded (Numba threads and faiss OpenMP set to 1).
Search records queries/s, recall@10, bytes per vector and, for memstrata, the
ratio to the named peer measured in the same run (medians). Encoding, decoding
and CSR: ``bench_vectors_codes.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from _vectors_data import (
    K,
    _faiss,
    _need_data,
    big,
    median_of,
    ratio_info,
    real,
    recall_at_10,
    run,
    single_thread,  # noqa: F401 (an autouse fixture: active in the modules that import it)
)

from memstrata import VectorMemory
from memstrata.kernels import (
    binarize,
    hamming_topk,
    rescore_topk,
)

# ------------------------------------------------------------------ search


def _flat_peer(x: np.ndarray, q: np.ndarray) -> Callable[[], Any]:
    faiss = _faiss()
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return lambda: index.search(q, K + 1)


SEARCH_IMPLS = [
    "memstrata-int8",
    "memstrata-int4",
    "memstrata-binary-rescore-auto",
    "memstrata-int8-shortlist",
    "memstrata-int8-shortlist-auto",
    "memstrata-binary-rescore",
    "memstrata-binary-rescore12",
    "memstrata-int4-rescore",
    "faiss-flat",
    "faiss-sq8",
    "faiss-binary-rescore",
    "usearch-exact",
    "usearch-exact-i8",
    "usearch-hnsw-i8",
    "numpy",
]

MEMORY_CONFIGS = {
    "memstrata-int8": dict(codec="int8"),
    "memstrata-int4": dict(codec="int4"),
    "memstrata-binary-rescore-auto": dict(codec="binary", rescore="auto"),  # target_recall=0.99
    "memstrata-int8-shortlist": dict(codec="int8", shortlist=400),
    "memstrata-int8-shortlist-auto": dict(codec="int8", shortlist="auto"),  # target_recall=0.99 of the full scan
    "memstrata-binary-rescore": dict(codec="binary", rescore=20),
    "memstrata-binary-rescore12": dict(codec="binary", rescore=12),
    "memstrata-int4-rescore": dict(codec="int4", rescore=2),
}


def simd_info(benchmark) -> None:
    """Record which SIMD instruction path the compiled scans took and the CPU's SIMD flags."""
    from memstrata.kernels.simd import cpu_flags, simd_path

    benchmark.extra_info["simd_path"] = simd_path()
    benchmark.extra_info["cpu_flags"] = " ".join(cpu_flags())


def _numpy_topk(x: np.ndarray, q: np.ndarray) -> Callable[[], Any]:
    """Exact float search with numpy: one matrix product, then argpartition and a sort of the k best."""

    def search():
        s = q @ x.T
        part = np.argpartition(-s, K + 1, axis=1)[:, : K + 1]
        order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
        return None, np.take_along_axis(part, order, axis=1)

    return search


def _usearch_exact_i8(x: np.ndarray, q: np.ndarray) -> Callable[[], Any]:
    """usearch's exact search over int8 vectors (x scaled by 127, the unit vectors' range)."""
    usearch = pytest.importorskip("usearch.index", reason="usearch is not installed (pip install 'memstrata[bench]')")
    xi = np.clip(np.rint(x * 127), -127, 127).astype(np.int8)
    qi = np.clip(np.rint(q * 127), -127, 127).astype(np.int8)
    return lambda: usearch.search(xi, qi, K + 1, usearch.MetricKind.IP, exact=True, threads=1)


def _optional_flat(x: np.ndarray, q: np.ndarray, name: str = "faiss-flat") -> dict[str, Callable[[], Any]]:
    """The faiss Flat peer for a ratio, or nothing when faiss is missing (our case still runs)."""
    try:
        return {name: _flat_peer(x, q)}
    except pytest.skip.Exception:
        return {}


def _faiss_binary_rescore(x: np.ndarray, q: np.ndarray, n_candidates: int):
    faiss = _faiss()
    center = x.mean(axis=0).astype(np.float32)
    index = faiss.IndexBinaryFlat(x.shape[1])
    index.add(binarize(x, center))
    qb = binarize(q, center)

    def search():
        _, cand = index.search(qb, n_candidates)
        return rescore_topk(q, x, cand.astype(np.int64), K + 1)

    return search


@pytest.mark.parametrize("impl", SEARCH_IMPLS)
def test_search_real(benchmark, impl):
    """1000 queries, top-10, against the 10k real embeddings."""
    _need_data()
    x = real()[0]
    q = x[:1000]
    benchmark.group = "search-top10-real-10k-384d"
    if impl in MEMORY_CONFIGS:
        memory = VectorMemory(384, metric="ip", **MEMORY_CONFIGS[impl])
        memory.add(x)
        fn: Callable[[], Any] = lambda: memory.search(q, K + 1)
        ids = run(benchmark, fn)[1]
        benchmark.extra_info["bytes_per_vector"] = round(memory.nbytes / len(memory), 1)
        if memory.rescore == "auto":
            stats = memory.stats()
            benchmark.extra_info["rescore_depth"] = stats["rescore_depth"]
            benchmark.extra_info["calibrated_recall"] = round(stats["measured_recall"], 4)
        if memory.shortlist == "auto":
            benchmark.extra_info["shortlist_size"] = memory.stats()["shortlist_size"]
        ratio_info(benchmark, fn, _optional_flat(x, q))
        simd_info(benchmark)
        memory.close()
    elif impl == "numpy":
        ids = run(benchmark, _numpy_topk(x, q), 3)[1]
        benchmark.extra_info["bytes_per_vector"] = 4 * 384
    elif impl == "usearch-exact-i8":
        ids = run(benchmark, _usearch_exact_i8(x, q), 3).keys
        benchmark.extra_info["bytes_per_vector"] = 384
    elif impl == "faiss-flat":
        ids = run(benchmark, _flat_peer(x, q))[1]
        benchmark.extra_info["bytes_per_vector"] = 4 * 384
    elif impl == "faiss-sq8":
        faiss = _faiss()
        index = faiss.IndexScalarQuantizer(384, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
        index.add(x)
        ids = run(benchmark, lambda: index.search(q, K + 1), 3)[1]
        benchmark.extra_info["bytes_per_vector"] = 384
    elif impl == "faiss-binary-rescore":
        ids = run(benchmark, _faiss_binary_rescore(x, q, 20 * K))[1]
        benchmark.extra_info["bytes_per_vector"] = 48
    else:
        usearch = pytest.importorskip("usearch.index", reason="usearch is not installed (pip install 'memstrata[bench]')")
        if impl == "usearch-exact":
            fn = lambda: usearch.search(x, q, K + 1, usearch.MetricKind.IP, exact=True, threads=1)
            ids = run(benchmark, fn, 3).keys
            benchmark.extra_info["bytes_per_vector"] = 4 * 384
        else:
            index = usearch.Index(ndim=384, metric=usearch.MetricKind.IP, dtype=usearch.ScalarKind.I8)
            index.add(np.arange(len(x)), x, threads=1)
            ids = run(benchmark, lambda: index.search(q, K + 1, threads=1)).keys
            benchmark.extra_info["bytes_per_vector"] = "384 + graph"
    benchmark.extra_info["recall@10"] = round(recall_at_10(np.asarray(ids)), 4)
    if median_of(benchmark):
        benchmark.extra_info["queries_per_s"] = round(1000 / median_of(benchmark))


@pytest.mark.parametrize(
    "impl",
    [
        "memstrata-int8",
        "memstrata-int4",
        "memstrata-int8-shortlist",
        "memstrata-int8-shortlist-auto",
        "memstrata-binary-rescore",
        "memstrata-binary-rescore12",
        "memstrata-binary-rescore-auto",
        "faiss-flat",
    ],
)
def test_search_100k(benchmark, impl):
    """200 queries (real rows 0-199), top-10, against the 100k set; recall vs exact float search."""
    _need_data()
    x = big()
    q = x[:200]
    benchmark.group = "search-top10-100k-384d"
    peers = _optional_flat(x, q)
    sims_all = q @ x.T
    exact_ids = np.argsort(-sims_all, axis=1, kind="stable")[:, : K + 1]
    ids = _memory_or_flat(benchmark, impl, x, q, peers, 3)
    exact_sims = np.take_along_axis(sims_all, exact_ids, axis=1)
    got_sims = np.take_along_axis(sims_all, np.maximum(ids, 0), axis=1)
    # top-11 including the query itself; a hit reaches the exact 11th similarity
    benchmark.extra_info["recall@10"] = round(float((got_sims >= exact_sims[:, -1:] - 1e-6).mean()), 4)
    if median_of(benchmark):
        benchmark.extra_info["queries_per_s"] = round(200 / median_of(benchmark))


def _memory_or_flat(
    benchmark, impl: str, stored: np.ndarray, q: np.ndarray, peers: dict[str, Callable[[], Any]], rounds: int
) -> np.ndarray:
    """Time faiss Flat, or a ``VectorMemory`` of ``MEMORY_CONFIGS[impl]`` with its ratio to Flat; the result ids."""
    if impl == "faiss-flat":
        if not peers:
            pytest.skip("faiss-cpu is not installed (pip install 'memstrata[bench]')")
        return run(benchmark, peers["faiss-flat"], 3)[1]
    memory = VectorMemory(384, metric="ip", **MEMORY_CONFIGS[impl])
    memory.add(stored)
    fn = lambda: memory.search(q, K + 1)
    ids = run(benchmark, fn, rounds)[1]
    benchmark.extra_info["bytes_per_vector"] = round(memory.nbytes / len(memory), 1)
    if memory.rescore == "auto":
        benchmark.extra_info["rescore_depth"] = memory.stats()["rescore_depth"]
    if memory.shortlist == "auto":
        benchmark.extra_info["shortlist_size"] = memory.stats()["shortlist_size"]
    ratio_info(benchmark, fn, peers, rounds=rounds)
    simd_info(benchmark)
    memory.close()
    return ids


@pytest.mark.parametrize(
    "impl", ["memstrata-binary-rescore-auto", "memstrata-int8", "memstrata-int8-shortlist-auto", "faiss-flat"]
)
def test_search_held_apart(benchmark, impl):
    """Store a random half of the real set, query with 1000 rows of the other half (never stored).

    The recall target of ``rescore="auto"`` is calibrated on stored rows only;
    this group shows it holding for unseen queries (recall vs exact float search).
    """
    _need_data()
    x = real()[0]
    order = np.random.default_rng(13).permutation(x.shape[0])
    stored, q = x[order[: x.shape[0] // 2]], x[order[x.shape[0] // 2 :]][:1000]
    benchmark.group = "search-top10-heldout-5k-384d"
    peers = _optional_flat(stored, q)
    ids = _memory_or_flat(benchmark, impl, stored, q, peers, 5)
    sims = q @ stored.T
    kth = -np.partition(-sims, K - 1, axis=1)[:, K - 1]
    got = np.take_along_axis(sims, np.maximum(np.asarray(ids)[:, :K], 0), axis=1)
    benchmark.extra_info["recall@10"] = round(float((got >= kth[:, None] - 1e-6).mean()), 4)


@pytest.mark.parametrize("impl", ["memstrata", "faiss-binary-flat"])
def test_hamming_search(benchmark, impl):
    """1000 queries, top-10 by Hamming distance over the 10k real set's sign bits."""
    _need_data()
    x = real()[0]
    bits = binarize(x, x.mean(axis=0).astype(np.float32))
    q = bits[:1000]
    benchmark.group = "hamming-top10-real-10k-384d"
    peers: dict[str, Callable[[], Any]] = {}
    try:
        faiss = _faiss()
        index = faiss.IndexBinaryFlat(384)
        index.add(bits)
        peers["faiss-binary-flat"] = lambda: index.search(q, K)
    except pytest.skip.Exception:
        if impl == "faiss-binary-flat":
            raise
    if impl == "memstrata":
        ours = lambda: hamming_topk(q, bits, K)
        dist = run(benchmark, ours)[0]
        ratio_info(benchmark, ours, peers)
        simd_info(benchmark)
        if peers:
            np.testing.assert_array_equal(dist, peers["faiss-binary-flat"]()[0])  # same distances as faiss
    else:
        run(benchmark, peers["faiss-binary-flat"])


def test_hamming_topk_kernel(benchmark):
    _need_data()
    x = real()[0]
    bits = binarize(x, x.mean(axis=0).astype(np.float32))
    benchmark.group = "hamming-top200-real-10k-384d"
    ours = lambda: hamming_topk(bits[:1000], bits, 200)
    run(benchmark, ours)
    ratio_info(benchmark, ours, _optional_flat(x, x[:1000]))
    simd_info(benchmark)
