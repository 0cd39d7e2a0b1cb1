"""Numba top-k kernels over candidate lists: int8, int4 and float rescoring.

Each query scores only the rows its candidate list names (entries ``< 0``
are skipped), e.g. a Hamming shortlist or the codes' best ``rescore * k``.
Full scans over every row are the compiled SIMD kernels of
``memstrata._native.simd`` instead. A candidate is kept when it beats the
worst of the ``k`` kept entries, ties to the lower row (see ``heap``).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from memstrata.kernels._common import serial_and_parallel
from memstrata.kernels.heap import heap_drain, heap_new, heap_push

__all__: list[str] = []

#: rows per block when the int4 kernel scans every row
_BLOCK_ROWS = 256


def _int4_topk(qw, factor, packed, row_bias, cand, k, out_s, out_i, n_chunks):  # pragma: no cover - compiled
    """Top-k of ``factor[a] * (qw[a] . codes[i]) + row_bias[i]`` for 4-bit codes packed two per byte.

    Scans every row in L2-sized blocks (like ``_int8_topk``) when ``cand`` has
    no columns, else only the rows in ``cand[a]`` (entries < 0 skipped).
    """
    nq, d = qw.shape
    n = packed.shape[0]
    half = d // 2
    odd = d & 1
    n_cand = cand.shape[1]
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        a0 = c * per
        a1 = min(nq, (c + 1) * per)
        if a1 <= a0:
            continue
        hs = np.empty((a1 - a0, k), np.float32)
        hi = np.empty((a1 - a0, k), np.int64)
        sizes = np.zeros(a1 - a0, np.int64)
        n_steps = n if n_cand == 0 else n_cand
        for r0 in range(0, n_steps, _BLOCK_ROWS):
            r1 = min(n_steps, r0 + _BLOCK_ROWS)
            for a in range(a0, a1):
                h_s = hs[a - a0]
                h_i = hi[a - a0]
                size = sizes[a - a0]
                f = factor[a]
                for p in range(r0, r1):
                    i = p if n_cand == 0 else cand[a, p]
                    if i < 0:
                        continue
                    acc = np.int32(0)
                    for m in range(half):
                        b = np.int32(packed[i, m])
                        acc = np.int32(acc + np.int32(qw[a, 2 * m]) * (b & 15) + np.int32(qw[a, 2 * m + 1]) * (b >> 4))
                    if odd:
                        acc = np.int32(acc + np.int32(qw[a, d - 1]) * np.int32(packed[i, half] & 15))
                    s = np.float32(acc) * f + row_bias[i]
                    if size < k or s > h_s[0] or (s == h_s[0] and i < h_i[0]):
                        size = heap_push(h_s, h_i, size, k, s, i)
                sizes[a - a0] = size
        for a in range(a0, a1):
            heap_drain(hs[a - a0], hi[a - a0], sizes[a - a0], out_s[a], out_i[a])


def _int8_topk_candidates(qw, factor, codes, row_bias, cand, k, out_s, out_i, n_chunks):  # pragma: no cover
    """As ``_int8_topk`` over the rows listed in ``cand[a]`` (entries < 0 are skipped)."""
    nq, d = qw.shape
    n_cand = cand.shape[1]
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        hs, hi = heap_new(k)
        for a in range(c * per, min(nq, (c + 1) * per)):
            q = qw[a]
            f = factor[a]
            size = 0
            for p in range(n_cand):
                i = cand[a, p]
                if i < 0:
                    continue
                acc = np.int32(0)
                for j in range(d):
                    acc = np.int32(acc + np.int32(q[j]) * np.int32(codes[i, j]))
                s = np.float32(acc) * f + row_bias[i]
                if size < k or s > hs[0] or (s == hs[0] and i < hi[0]):
                    size = heap_push(hs, hi, size, k, s, i)
            heap_drain(hs, hi, size, out_s[a], out_i[a])


def _float_topk_candidates(queries, vectors, rows, cand, k, factor, row_bias, out_s, out_i, n_chunks):  # pragma: no cover
    """Top-k of ``factor * (q . vectors[rows[i]]) + row_bias[i]`` over candidates ``i`` in ``cand[a]``.

    ``rows`` maps a candidate index to its row in ``vectors`` (the float
    originals may be stored in another order, e.g. a file that is only
    appended). Candidates are scored four at a time: the rows are scattered in
    memory, and four independent streams keep more cache misses in flight.
    """
    nq, d = queries.shape
    n_cand = cand.shape[1]
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        hs, hi = heap_new(k)
        idx = np.empty(4, np.int64)
        sc = np.empty(4, np.float32)
        for a in range(c * per, min(nq, (c + 1) * per)):
            size = 0
            p = 0
            while p < n_cand:
                # gather the next (up to) four valid candidates
                m = 0
                while m < 4 and p < n_cand:
                    if cand[a, p] >= 0:
                        idx[m] = cand[a, p]
                        m += 1
                    p += 1
                if m == 0:
                    break
                r0 = rows[idx[0]]
                r1 = rows[idx[1]] if m > 1 else r0
                r2 = rows[idx[2]] if m > 2 else r0
                r3 = rows[idx[3]] if m > 3 else r0
                s0 = np.float32(0.0)
                s1 = np.float32(0.0)
                s2 = np.float32(0.0)
                s3 = np.float32(0.0)
                for j in range(d):
                    qj = queries[a, j]
                    s0 += qj * vectors[r0, j]
                    s1 += qj * vectors[r1, j]
                    s2 += qj * vectors[r2, j]
                    s3 += qj * vectors[r3, j]
                sc[0] = s0
                sc[1] = s1
                sc[2] = s2
                sc[3] = s3
                for t in range(m):
                    i = idx[t]
                    s = sc[t] * factor + row_bias[i]
                    if size < k or s > hs[0] or (s == hs[0] and i < hi[0]):
                        size = heap_push(hs, hi, size, k, s, i)
            heap_drain(hs, hi, size, out_s[a], out_i[a])


_int4_topk_serial, _int4_topk_parallel = serial_and_parallel(_int4_topk)
_int8_topk_candidates_serial, _int8_topk_candidates_parallel = serial_and_parallel(_int8_topk_candidates)
# the float dot product may be summed in any order (SIMD); results match a
# float64 reference to float32 rounding
_float_topk_candidates_serial, _float_topk_candidates_parallel = serial_and_parallel(
    _float_topk_candidates, fastmath={"reassoc", "contract"}
)
