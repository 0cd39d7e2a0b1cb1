"""A bounded heap for top-k selection inside Numba kernels.

Once full, the root is the *worst* kept entry (lowest score, then highest
index), so a new candidate is compared with one value and rejected in the
common case; until then entries are only appended, and ordered once.
Draining writes the kept entries best first, ties to the lower index (the
order ``np.lexsort((index, -score))`` gives); the compiled scans in
``native/ms_select.h`` keep the same order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["heap_drain", "heap_new", "heap_push"]


def heap_new(k):  # pragma: no cover - compiled
    """An empty heap of capacity ``k``: its scores and indexes (the size is the caller's count)."""
    return np.empty(k, np.float32), np.empty(k, np.int64)


def heap_sift_down(hs, hi, size, pos):  # pragma: no cover - compiled
    """Restore a heap whose root is the *worst* kept entry (lowest score, then highest index)."""
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        worst = left
        right = left + 1
        if right < size and (hs[right] < hs[left] or (hs[right] == hs[left] and hi[right] > hi[left])):
            worst = right
        if hs[worst] < hs[pos] or (hs[worst] == hs[pos] and hi[worst] > hi[pos]):
            hs[pos], hs[worst] = hs[worst], hs[pos]
            hi[pos], hi[worst] = hi[worst], hi[pos]
            pos = worst
        else:
            return


def heap_order(hs, hi, size):  # pragma: no cover - compiled
    """Turn the first ``size`` entries, in any order, into a heap (bottom-up, O(size))."""
    for pos in range(size // 2 - 1, -1, -1):
        heap_sift_down(hs, hi, size, pos)


def heap_push(hs, hi, size, k, s, i):  # pragma: no cover - compiled
    """Offer ``(s, i)`` to a heap of capacity ``k`` holding ``size`` entries; returns the new size.

    Until it is full the heap is only filled, in arrival order; the push that fills it orders
    it once (:func:`heap_order`), so there is one sift loop and no sift-up. ``hs[0]`` is the
    worst kept entry only once ``size == k``: callers compare with it only then.
    """
    if size < k:
        hs[size] = s
        hi[size] = i
        size += 1
        if size == k:
            heap_order(hs, hi, size)
        return size
    if s > hs[0] or (s == hs[0] and i < hi[0]):
        hs[0] = s
        hi[0] = i
        heap_sift_down(hs, hi, size, 0)
    return size


def heap_drain(hs, hi, size, out_s, out_i):  # pragma: no cover - compiled
    """Write the heap best-first into ``out_s``/``out_i``; pad the rest with ``-inf``/``-1``."""
    k = out_s.shape[0]
    for p in range(size, k):
        out_s[p] = -np.inf
        out_i[p] = -1
    if size < k:
        heap_order(hs, hi, size)  # never filled, so never ordered
    while size > 0:
        size -= 1
        out_s[size] = hs[0]
        out_i[size] = hi[0]
        hs[0] = hs[size]
        hi[0] = hi[size]
        heap_sift_down(hs, hi, size, 0)


heap_new = njit(cache=True, nogil=True)(heap_new)
heap_sift_down = njit(cache=True, nogil=True)(heap_sift_down)
heap_order = njit(cache=True, nogil=True)(heap_order)
heap_push = njit(cache=True, nogil=True)(heap_push)
heap_drain = njit(cache=True, nogil=True)(heap_drain)


