"""Recall-targeted rescore depth: measure recall on the stored data, pick the smallest depth that meets it.

With ``VectorMemory(..., rescore="auto", target_recall=r)`` the memory
re-ranks ``depth * k`` code candidates by the float originals, where
``depth`` is chosen here: a sample of stored vectors is searched as queries
(their own row excluded) at increasing depths, each result compared with the
exact float search over every stored row, and the smallest depth whose
recall@k is at least ``r`` *with margin* wins, so the target holds for queries
the memory has not seen, not only for the sample (``tests/test_calibrate.py``
checks it on a held-apart half of the development set). Two margins:

- sampling: the one-sided 95 % Wilson lower bound of the measured recall
  is what must reach the target;
- stored vectors are easier queries than unseen ones: on the development
  set, binary codes at a fixed depth reached recall 0.993 with stored
  queries (own row excluded) but 0.990 with the held-apart half. The bound
  must therefore clear the target by a third of the allowed misses
  (``0.99`` needs a bound of ``0.9933``).

The calibration is refreshed when the number of stored rows has doubled (or
halved) since it was measured; until a memory holds ``MIN_ROWS`` rows the
deepest setting is used, which on so few rows rescoring makes exact anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from memstrata.vectors._search import search_rows

if TYPE_CHECKING:
    from memstrata.vectors._state import IndexState

__all__ = ["DEPTHS", "MIN_ROWS", "SAMPLE_QUERIES", "Calibration", "current_depth"]

#: Rescore depths tried, in candidates per result (the search scores ``depth * k`` candidates exactly).
DEPTHS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64)
#: Stored vectors searched as queries per calibration.
SAMPLE_QUERIES = 512
#: Below this many rows no calibration runs and the deepest setting is used.
MIN_ROWS = 200
#: Results per sample query the recall is measured at (recall@10).
CALIBRATION_K = 10
#: One-sided 95 % normal quantile for the Wilson lower bound.
_Z = 1.645
#: Share of the allowed misses (1 - target) the bound must keep in reserve for unseen queries.
UNSEEN_MARGIN = 1 / 3


@dataclass(frozen=True)
class Calibration:
    """One measurement: the depth chosen and the recall it reached on the sample."""

    depth: int
    recall: float  # recall@k measured on the sample at ``depth`` (k = CALIBRATION_K - 1, see calibrate)
    lower_bound: float  # its one-sided 95 % Wilson lower bound
    met: bool  # lower_bound >= required(target_recall)
    n_rows: int  # live rows when measured
    n_queries: int
    k: int


def wilson_lower(hits: int, total: int) -> float:
    """One-sided 95 % Wilson score lower bound of a proportion."""
    if total == 0:
        return 0.0
    p = hits / total
    z2 = _Z * _Z
    centre = p + z2 / (2 * total)
    spread = _Z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, (centre - spread) / (1 + z2 / total))


def required(target: float) -> float:
    """The lower bound a depth must reach for ``target`` to hold on unseen queries (see the module docstring)."""
    return target + UNSEEN_MARGIN * (1.0 - target)


def current_depth(memory: IndexState) -> int:
    """The rescore depth to use now, calibrating first when none is current."""
    if memory._depth_override is not None:
        return memory._depth_override
    n_live = int(memory._alive.sum())
    if n_live < MIN_ROWS:
        return DEPTHS[-1]
    cal = memory._calibration
    if cal is None or not (cal.n_rows // 2 < n_live < 2 * cal.n_rows):
        cal = calibrate(memory)
        memory._calibration = cal
    return cal.depth


def _exact_top(memory: IndexState, queries: np.ndarray, self_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact float top-k over the live rows (query's own row excluded): rows and k-th best score per query."""
    originals = memory._originals
    assert memory._orig_rows is not None and originals is not None
    live = np.flatnonzero(memory._alive)
    nq = queries.shape[0]
    best_s = np.full((nq, 0), -np.inf, np.float32)
    best_r = np.full((nq, 0), -1, np.int64)
    for start in range(0, live.size, 32768):
        rows = live[start : start + 32768]
        x = originals.take(memory._orig_rows[rows])
        s = queries @ x.T
        if memory.metric == "l2":
            s = 2 * s - np.einsum("ij,ij->i", x, x)[None, :]
        s[rows[None, :] == self_rows[:, None]] = -np.inf
        all_s = np.concatenate([best_s, s.astype(np.float32)], axis=1)
        all_r = np.concatenate([best_r, np.broadcast_to(rows, s.shape)], axis=1)
        keep = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(all_s, keep, axis=1)
        best_r = np.take_along_axis(all_r, keep, axis=1)
    return best_r, best_s[:, -1]


def calibrate(memory: IndexState) -> Calibration:
    """Measure recall@k at increasing depths on a sample of stored rows; the smallest that meets the target."""
    target = required(memory.target_recall)
    live = np.flatnonzero(memory._alive)
    rng = np.random.default_rng(live.size)
    rows = np.sort(rng.choice(live, size=min(SAMPLE_QUERIES, live.size), replace=False))
    assert memory._orig_rows is not None and memory._originals is not None
    originals, orig_rows = memory._originals, memory._orig_rows
    queries = np.ascontiguousarray(originals.take(orig_rows[rows]), dtype=np.float32)
    # Each sample query is stored, so its own row takes one of the k results and one of
    # the depth * k candidates: score the other k - 1 results against the exact top k - 1
    # (searching k + 1 instead would give the sample more candidates per result than a
    # query from outside gets, and overstate the recall).
    k = min(CALIBRATION_K, live.size)
    kept = max(1, k - 1)
    _, kth = _exact_top(memory, queries, rows, kept)

    def measure(depth: int) -> tuple[int, int]:
        memory._depth_override, memory._shortlist_override = depth, 0  # the codes' quality, on a full scan
        try:
            _, found = search_rows(memory, queries, k, None)
        finally:
            memory._depth_override = memory._shortlist_override = None
        hits = 0
        for a in range(rows.size):
            got = [r for r in found[a].tolist() if r != rows[a] and r >= 0][:kept]
            if not got:
                continue
            x = originals.take(orig_rows[np.array(got)])
            s = x @ queries[a]
            if memory.metric == "l2":
                s = 2 * s - np.einsum("ij,ij->i", x, x)
            hits += int((s >= kth[a] - 1e-6 * max(1.0, abs(float(kth[a])))).sum())  # ties with the k-th count
        return hits, rows.size * kept

    # recall grows with depth (a deeper search re-ranks a superset), so bisect over DEPTHS
    lo, hi = 0, len(DEPTHS) - 1
    results: dict[int, tuple[int, int]] = {}
    while lo < hi:
        mid = (lo + hi) // 2
        results[mid] = measure(DEPTHS[mid])
        if wilson_lower(*results[mid]) >= target:
            hi = mid
        else:
            lo = mid + 1
    if lo not in results:
        results[lo] = measure(DEPTHS[lo])
    hits, total = results[lo]
    bound = wilson_lower(hits, total)
    return Calibration(
        depth=DEPTHS[lo],
        recall=hits / total if total else 1.0,
        lower_bound=bound,
        met=bound >= target,
        n_rows=int(live.size),
        n_queries=int(rows.size),
        k=kept,
    )
