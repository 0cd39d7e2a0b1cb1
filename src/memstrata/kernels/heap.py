"""A bounded heap for top-k selection inside Numba kernels.

The root is the *worst* kept entry (lowest score, then highest index), so a
new candidate is compared with one value and rejected in the common case.
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


# deliberate twin of the sift-up loop in heap_push below: see the comment there (a shared
# helper measured 2.7-4.4x slower)
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


def heap_push(hs, hi, size, k, s, i):  # pragma: no cover - compiled
    """Offer ``(s, i)`` to a heap of capacity ``k`` holding ``size`` entries; returns the new size."""
    if size < k:
        # sift up
        pos = size
        hs[pos] = s
        hi[pos] = i
        # deliberate twin of heap_sift_down's compare-and-swap: as shared helper functions (even
        # inline="always") the heap ran 2.7-4.4x slower (measured), so both stay written out
        while pos > 0:
            parent = (pos - 1) // 2
            if hs[pos] < hs[parent] or (hs[pos] == hs[parent] and hi[pos] > hi[parent]):
                hs[pos], hs[parent] = hs[parent], hs[pos]
                hi[pos], hi[parent] = hi[parent], hi[pos]
                pos = parent
            else:
                break
        return size + 1
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
    while size > 0:
        size -= 1
        out_s[size] = hs[0]
        out_i[size] = hi[0]
        hs[0] = hs[size]
        hi[0] = hi[size]
        heap_sift_down(hs, hi, size, 0)


heap_new = njit(cache=True, nogil=True)(heap_new)
heap_sift_down = njit(cache=True, nogil=True)(heap_sift_down)
heap_push = njit(cache=True, nogil=True)(heap_push)
heap_drain = njit(cache=True, nogil=True)(heap_drain)


