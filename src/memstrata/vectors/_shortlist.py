"""Recall-targeted shortlist size: how many Hamming-nearest rows an int8 search must score.

With ``VectorMemory(codec="int8", shortlist="auto")`` a search first ranks
every row by the Hamming distance of its sign bits (a fraction of the int8
scan's cost), then scores only the nearest ``size`` rows with the int8
kernel. A shortlist too short drops true neighbours; one too long costs
time for nothing. The size is chosen like the rescore depth
(``_recall``): stored vectors searched as queries (their own row excluded),
each result compared with the full scan's, and the smallest size in
:data:`SIZES` whose agreement reaches ``target_recall`` with the same two
margins (the 95 % Wilson lower bound, and a third of the allowed misses kept
for unseen queries). What is measured is the recall the shortlist keeps of
the full scan's; with ``rescore="auto"`` the depth is calibrated first
(without a shortlist) and the shortlist then measured at that depth.

Refreshed when the number of stored rows has doubled (or halved) since it
was measured; a memory of fewer than ``2 * SIZES[0]`` rows scans every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from memstrata.vectors._recall import CALIBRATION_K, SAMPLE_QUERIES, required, wilson_lower
from memstrata.vectors._search import decode, search_rows

if TYPE_CHECKING:
    from memstrata.vectors._state import IndexState

__all__ = ["SIZES", "ShortlistCalibration", "shortlist_size"]

#: Shortlist sizes tried (rows scored with the int8 kernel per query).
SIZES = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
#: No shortlist below this many live rows: the full scan is as cheap.
MIN_ROWS = 2 * SIZES[0]


@dataclass(frozen=True)
class ShortlistCalibration:
    """One measurement: the size chosen (None: scan every row) and how much of the full scan it kept."""

    size: int | None
    agreement: float  # share of the full scan's top k - 1 (own row excluded) the shortlist found
    lower_bound: float
    met: bool
    n_rows: int
    n_queries: int


def shortlist_size(memory: IndexState) -> int | None:
    """The shortlist to use now (None: scan every row), calibrating first for ``shortlist="auto"``."""
    if memory.shortlist is None or memory._bits is None:
        return None
    if memory._shortlist_override is not None:
        return memory._shortlist_override or None  # 0 while a calibration measures the full scan
    if memory.shortlist != "auto":
        return int(memory.shortlist)
    n_live = int(memory._alive.sum())
    if n_live < MIN_ROWS:
        return None
    cal = memory._shortlist_calibration
    if cal is None or not (cal.n_rows // 2 < n_live < 2 * cal.n_rows):
        cal = memory._shortlist_calibration = calibrate(memory)
    return cal.size


def _measure(memory: IndexState, queries: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    memory._shortlist_override = size
    try:
        return search_rows(memory, queries, CALIBRATION_K, None)
    finally:
        memory._shortlist_override = None


def calibrate(memory: IndexState) -> ShortlistCalibration:
    """Measure agreement with the full scan at increasing sizes; the smallest that meets the target."""
    target = required(memory.target_recall)
    live = np.flatnonzero(memory._alive)
    rng = np.random.default_rng(live.size + 1)
    rows = np.sort(rng.choice(live, size=min(SAMPLE_QUERIES, live.size), replace=False))
    if memory._originals is not None and memory._orig_rows is not None:
        queries = memory._originals.take(memory._orig_rows[rows])
    else:  # no originals kept: the decoded codes stand in for the stored vectors
        queries = decode(memory, memory._codes[rows])
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if memory.rescore is not None:
        memory._rescore_depth()  # the depth first (calibrated on the full scan), then the shortlist at that depth
    ref_s, ref_f = _measure(memory, queries, 0)
    kept = CALIBRATION_K - 1
    kth = np.empty(rows.size, np.float64)
    for a in range(rows.size):
        others = ref_s[a][(ref_f[a] != rows[a]) & (ref_f[a] >= 0)][:kept]
        kth[a] = others[-1] if others.size else np.inf
    total = rows.size * kept

    def hits_at(size: int) -> int:
        s, f = _measure(memory, queries, size)
        hits = 0
        for a in range(rows.size):
            got = s[a][(f[a] != rows[a]) & (f[a] >= 0)][:kept]
            hits += int((got >= kth[a] - 1e-6 * max(1.0, abs(kth[a]))).sum())  # ties with the k-th count
        return hits

    sizes = [s for s in SIZES if s < live.size]
    for size in sizes:  # agreement grows with size (a longer shortlist scores a superset); most stop early
        hits = hits_at(size)
        bound = wilson_lower(hits, total)
        if bound >= target:
            return ShortlistCalibration(size, hits / total, bound, True, int(live.size), int(rows.size))
    return ShortlistCalibration(None, 1.0, 1.0, True, int(live.size), int(rows.size))
