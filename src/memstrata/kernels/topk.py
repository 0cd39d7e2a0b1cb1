"""Top-k search kernels: Hamming over packed bits, int8 inner products, float rescoring.

Ranking is deterministic: best score first, ties broken by the lower row index
(the order ``np.lexsort((index, -score))`` gives). When ``k`` exceeds the number
of rows (or of valid candidates), trailing columns hold index ``-1`` with
distance ``-1`` (Hamming) or score ``-inf``.

int8 search turns each float query into int16 weights ``w = round(q * scale / a)``
(one factor ``a`` per query), so the inner loop is an exact int16 x int8 multiply
with int32 accumulation, which compiles to ``pmaddwd`` SIMD; the float score is
``a * dot + sum(q * (offset + 128 * scale))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from memstrata.kernels._common import as_float_matrix, describe, parallel_twin_source, use_parallel

__all__ = [
    "PARALLEL_MIN_WORK",
    "hamming_topk",
    "int8_topk",
    "rescore_topk",
]

#: Hamming searches with at least this many queries (and whole 64-bit words
#: per code) transpose the codes once and use the word-major kernel.
COLUMNS_MIN_QUERIES = 8

# rows per block in the exhaustive int8 scan: 256 x 384-byte rows stay in L2
_INT8_BLOCK_ROWS = 256

#: Searches with at least this many query x row x byte operations use the
#: ``parallel=True`` kernels (over queries) when Numba has more than one thread.
PARALLEL_MIN_WORK = 1 << 24


@intrinsic
def _popcount(typingctx, value):  # pragma: no cover - compiled
    """Population count of an integer (one ``popcnt`` instruction), as int64.

    int64, not the argument's type: Numba types ``int64 + uint64`` as float64,
    which would turn every distance sum into float arithmetic.
    """
    if not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        count = builder.ctpop(args[0])
        if value.bitwidth < 64:
            count = builder.zext(count, context.get_value_type(types.int64))
        return count

    return types.int64(value), codegen


# --------------------------------------------------------------- selection


def _heap_sift_down(hs, hi, size, pos):  # pragma: no cover - compiled
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


def _heap_push(hs, hi, size, k, s, i):  # pragma: no cover - compiled
    """Offer ``(s, i)`` to a heap of capacity ``k`` holding ``size`` entries; returns the new size."""
    if size < k:
        # sift up
        pos = size
        hs[pos] = s
        hi[pos] = i
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
        _heap_sift_down(hs, hi, size, 0)
    return size


def _heap_drain(hs, hi, size, out_s, out_i):  # pragma: no cover - compiled
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
        _heap_sift_down(hs, hi, size, 0)


_heap_sift_down = njit(cache=True, nogil=True)(_heap_sift_down)
_heap_push = njit(cache=True, nogil=True)(_heap_push)
_heap_drain = njit(cache=True, nogil=True)(_heap_drain)


# ----------------------------------------------------------------- kernels


def _select_smallest(dist, hist, k, out_d, out_i, start):  # pragma: no cover - compiled
    """The ``k`` smallest of integer ``dist`` (histogram ``hist``), ascending, ties by index.

    Counting selection: the histogram gives the cut-off distance ``t`` (fewer
    than ``k`` rows are closer, at least ``k`` are within ``t``); one pass then
    places every kept row at its final position.
    """
    n = dist.shape[0]
    kk = min(k, n)
    below = 0
    t = 0
    while below + hist[t] < kk:
        below += hist[t]
        t += 1
    take_at_t = kk - below
    start[0] = 0
    for b in range(t):
        start[b + 1] = start[b] + hist[b]
    for i in range(n):
        s = dist[i]
        if s < t:
            p = start[s]
            start[s] += 1
            out_d[p] = s
            out_i[p] = i
        elif s == t and take_at_t > 0:
            p = start[t]
            start[t] += 1
            take_at_t -= 1
            out_d[p] = s
            out_i[p] = i
    for p in range(kk, k):
        out_d[p] = -1
        out_i[p] = -1


_select_smallest = njit(cache=True, nogil=True)(_select_smallest)


def _select_smallest_sampled(dist, k, out_d, out_i, hist, start, picked):  # pragma: no cover - compiled
    """``_select_smallest`` without a histogram of every distance when ``k`` is small against ``n``.

    A histogram of every 16th distance gives a cut-off that keeps about twice
    ``k`` rows; one cheap pass collects the rows within it (in index order),
    and the exact selection runs on those. All rows at or below the cut-off
    are collected, so when at least ``k`` are, the answer is exact; otherwise
    it falls back to the full histogram.
    """
    n = dist.shape[0]
    hist[:] = 0
    n_sampled = 0
    for i in range(0, n, 16):
        hist[dist[i]] += 1
        n_sampled += 1
    want = min(n_sampled, 2 * (k * n_sampled) // n + 4)
    cut = 0
    seen = hist[0]
    while seen < want:
        cut += 1
        seen += hist[cut]
    count = 0
    for i in range(n):
        if dist[i] <= cut:
            picked[count] = i
            count += 1
    hist[:] = 0
    if count < k:
        for i in range(n):
            hist[dist[i]] += 1
        _select_smallest(dist, hist, k, out_d, out_i, start)
        return
    sub = np.empty(count, np.int32)
    for p in range(count):
        d = dist[picked[p]]
        sub[p] = d
        hist[d] += 1
    _select_smallest(sub, hist, k, out_d, out_i, start)
    for p in range(k):
        out_i[p] = picked[out_i[p]]


_select_smallest_sampled = njit(cache=True, nogil=True)(_select_smallest_sampled)


def _hamming_topk(qc, dbc, k, n_bits, out_d, out_i, n_chunks):  # pragma: no cover - compiled
    """k nearest rows of ``dbc`` by Hamming distance for each row of ``qc`` (same word dtype).

    Queries go four at a time (the caller pads ``qc`` to a multiple of 4): each
    database word is loaded once for four XOR/popcounts, which is what bounds
    this loop. Selection is by counting, so ``k`` costs nothing extra.
    """
    nq, w = qc.shape
    n = dbc.shape[0]
    n_blocks = nq // 4
    per = (n_blocks + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        dist = np.empty((4, n), np.int32)
        hist = np.empty((4, n_bits + 2), np.int64)
        start = np.empty(n_bits + 2, np.int64)
        for blk in range(c * per, min(n_blocks, (c + 1) * per)):
            a = 4 * blk
            hist[:, :] = 0
            q0 = qc[a]
            q1 = qc[a + 1]
            q2 = qc[a + 2]
            q3 = qc[a + 3]
            for i in range(n):
                # index dbc[i, m] directly: a row view per row would cost reference-count calls
                s0 = 0
                s1 = 0
                s2 = 0
                s3 = 0
                for m in range(w):
                    r = dbc[i, m]
                    s0 += _popcount(q0[m] ^ r)
                    s1 += _popcount(q1[m] ^ r)
                    s2 += _popcount(q2[m] ^ r)
                    s3 += _popcount(q3[m] ^ r)
                dist[0, i] = s0
                dist[1, i] = s1
                dist[2, i] = s2
                dist[3, i] = s3
                hist[0, s0] += 1
                hist[1, s1] += 1
                hist[2, s2] += 1
                hist[3, s3] += 1
            for b in range(4):
                _select_smallest(dist[b], hist[b], k, out_d[a + b], out_i[a + b], start)


def _hamming_topk_columns(qc, dbt, k, n_bits, out_d, out_i, n_chunks):  # pragma: no cover - compiled
    """As ``_hamming_topk`` with the database stored word-major (``dbt[m, i]`` is word m of row i).

    The inner loop then runs over rows with unit stride, so LLVM vectorizes
    the XOR and the population count (AVX2 byte-table popcount) instead of one
    scalar ``popcnt`` per word; used for batches of queries, where transposing
    the database once is cheap (``benchmarks/bench_vectors.py``, group
    ``hamming-top200-real-10k-384d``).
    """
    nq, w = qc.shape
    n = dbt.shape[1]
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        dist = np.empty(n, np.int32)
        hist = np.empty(n_bits + 2, np.int64)
        start = np.empty(n_bits + 2, np.int64)
        picked = np.empty(n, np.int64)
        for a in range(c * per, min(nq, (c + 1) * per)):
            q0 = qc[a, 0]
            for i in range(n):
                dist[i] = np.int32(_popcount(q0 ^ dbt[0, i]))
            for m in range(1, w):
                qm = qc[a, m]
                for i in range(n):
                    dist[i] += np.int32(_popcount(qm ^ dbt[m, i]))
            if 16 * k <= n:
                _select_smallest_sampled(dist, k, out_d[a], out_i[a], hist, start, picked)
            else:
                hist[:] = 0
                for i in range(n):
                    hist[dist[i]] += 1
                _select_smallest(dist, hist, k, out_d[a], out_i[a], start)


def _int8_topk(qw, factor, codes, row_bias, k, out_s, out_i, n_chunks):  # pragma: no cover - compiled
    """Top-k of ``factor[a] * (qw[a] . codes[i]) + row_bias[i]`` over all rows (int32 dot products).

    Rows go in blocks of ``_INT8_BLOCK_ROWS`` that stay in L2 while every query
    of the chunk scans them (one heap per query), so the codes are read from
    memory once per chunk instead of once per query.
    """
    nq, d = qw.shape
    n = codes.shape[0]
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        a0 = c * per
        a1 = min(nq, (c + 1) * per)
        if a1 <= a0:
            continue
        hs = np.empty((a1 - a0, k), np.float32)
        hi = np.empty((a1 - a0, k), np.int64)
        sizes = np.zeros(a1 - a0, np.int64)
        for r0 in range(0, n, _INT8_BLOCK_ROWS):
            r1 = min(n, r0 + _INT8_BLOCK_ROWS)
            for a in range(a0, a1):
                h_s = hs[a - a0]
                h_i = hi[a - a0]
                size = sizes[a - a0]
                f = factor[a]
                for i in range(r0, r1):
                    # int32 arithmetic (the wrapper keeps d * max|w| * 128 below 2**31); the
                    # explicit truncation lets LLVM use pmaddwd instead of 64-bit multiplies.
                    # codes[i, j], not a row view: views cost reference-count calls per row
                    acc = np.int32(0)
                    for j in range(d):
                        acc = np.int32(acc + np.int32(qw[a, j]) * np.int32(codes[i, j]))
                    s = np.float32(acc) * f + row_bias[i]
                    if size < k or s > h_s[0]:  # rows come in index order, so a tie never wins
                        size = _heap_push(h_s, h_i, size, k, s, i)
                sizes[a - a0] = size
        for a in range(a0, a1):
            _heap_drain(hs[a - a0], hi[a - a0], sizes[a - a0], out_s[a], out_i[a])


def _int4_topk(qw, factor, packed, row_bias, k, cand, out_s, out_i, n_chunks):  # pragma: no cover - compiled
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
        for r0 in range(0, n_steps, _INT8_BLOCK_ROWS):
            r1 = min(n_steps, r0 + _INT8_BLOCK_ROWS)
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
                        size = _heap_push(h_s, h_i, size, k, s, i)
                sizes[a - a0] = size
        for a in range(a0, a1):
            _heap_drain(hs[a - a0], hi[a - a0], sizes[a - a0], out_s[a], out_i[a])


def _int8_topk_candidates(qw, factor, codes, row_bias, cand, k, out_s, out_i, n_chunks):  # pragma: no cover
    """As ``_int8_topk`` over the rows listed in ``cand[a]`` (entries < 0 are skipped)."""
    nq, d = qw.shape
    n_cand = cand.shape[1]
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        hs = np.empty(k, np.float32)
        hi = np.empty(k, np.int64)
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
                    size = _heap_push(hs, hi, size, k, s, i)
            _heap_drain(hs, hi, size, out_s[a], out_i[a])


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
        hs = np.empty(k, np.float32)
        hi = np.empty(k, np.int64)
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
                        size = _heap_push(hs, hi, size, k, s, i)
            _heap_drain(hs, hi, size, out_s[a], out_i[a])


_hamming_topk_serial = njit(cache=True, nogil=True)(_hamming_topk)
_hamming_topk_parallel = njit(cache=True, nogil=True, parallel=True)(parallel_twin_source(_hamming_topk))
_hamming_topk_columns_serial = njit(cache=True, nogil=True)(_hamming_topk_columns)
_hamming_topk_columns_parallel = njit(cache=True, nogil=True, parallel=True)(parallel_twin_source(_hamming_topk_columns))
_int8_topk_serial = njit(cache=True, nogil=True)(_int8_topk)
_int8_topk_parallel = njit(cache=True, nogil=True, parallel=True)(parallel_twin_source(_int8_topk))
_int4_topk_serial = njit(cache=True, nogil=True)(_int4_topk)
_int4_topk_parallel = njit(cache=True, nogil=True, parallel=True)(parallel_twin_source(_int4_topk))
_int8_topk_candidates_serial = njit(cache=True, nogil=True)(_int8_topk_candidates)
_int8_topk_candidates_parallel = njit(cache=True, nogil=True, parallel=True)(
    parallel_twin_source(_int8_topk_candidates)
)
# the float dot product may be summed in any order (SIMD); results match a
# float64 reference to float32 rounding
_float_topk_candidates_serial = njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})(_float_topk_candidates)
_float_topk_candidates_parallel = njit(cache=True, nogil=True, parallel=True, fastmath={"reassoc", "contract"})(
    parallel_twin_source(_float_topk_candidates)
)


# ---------------------------------------------------------------- helpers


def _n_chunks(parallel: bool, nq: int) -> int:
    if not parallel:
        return 1
    import numba

    return max(1, min(nq, 4 * numba.get_num_threads()))


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    return int(k)


def _as_words(name: str, codes: Any, width: int | None) -> np.ndarray:
    if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8:
        raise TypeError(f"{name}: expected uint8 array of shape (n, n_bytes) from binarize(), got {describe(codes)}")
    if codes.ndim == 1 and name == "query_codes":
        codes = codes.reshape(1, -1)
    if codes.ndim != 2 or codes.shape[1] == 0:
        raise ValueError(f"{name}: expected uint8 array of shape (n, n_bytes) from binarize(), got {describe(codes)}")
    if width is not None and codes.shape[1] != width:
        raise ValueError(
            f"{name}: expected {width} bytes per row to match query_codes, got {describe(codes)}"
        )
    return np.ascontiguousarray(codes)


def query_weights(
    queries: np.ndarray, scales: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int16 weights, per-query factor and constant for int8 search (see the module docstring).

    The largest weight is chosen so that ``d * max|w| * 128`` fits int32.
    """
    d = queries.shape[1]
    qs = queries.astype(np.float64) * scales.astype(np.float64)
    peak = np.abs(qs).max(axis=1)
    w_max = float(min(32767, (2**31 - 1) // (128 * d)))
    factor = np.where(peak > 0, peak / w_max, 1.0)
    weights = np.rint(qs / factor[:, None]).astype(np.int16)
    bias = offsets.astype(np.float64) + 128.0 * scales.astype(np.float64)
    const = queries.astype(np.float64) @ bias
    return weights, factor.astype(np.float32), const.astype(np.float32)


def int8_search(
    queries: np.ndarray,
    codes: np.ndarray,
    scales: np.ndarray,
    offsets: np.ndarray,
    k: int,
    *,
    factor_scale: float = 1.0,
    row_bias: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validated-input int8 top-k used by the public wrapper and ``VectorMemory``.

    Scores are ``factor_scale * (q . x_hat) + row_bias`` with ``x_hat`` the
    dequantized rows (``factor_scale=2``, ``row_bias=-|x_hat|^2`` ranks by L2).
    """
    nq = queries.shape[0]
    n, d = codes.shape
    weights, factor, const = query_weights(queries, scales, offsets)
    factor = (factor * np.float32(factor_scale)).astype(np.float32)
    bias = np.zeros(n, np.float32) if row_bias is None else row_bias
    out_s = np.empty((nq, k), np.float32)
    out_i = np.empty((nq, k), np.int64)
    if nq == 0:
        return out_s, out_i
    if candidates is None:
        parallel = use_parallel(nq * n * d, PARALLEL_MIN_WORK)
        kernel = _int8_topk_parallel if parallel else _int8_topk_serial
        kernel(weights, factor, codes, bias, k, out_s, out_i, _n_chunks(parallel, nq))
    else:
        parallel = use_parallel(nq * candidates.shape[1] * d, PARALLEL_MIN_WORK)
        kernel = _int8_topk_candidates_parallel if parallel else _int8_topk_candidates_serial
        kernel(weights, factor, codes, bias, candidates, k, out_s, out_i, _n_chunks(parallel, nq))
    valid = out_i >= 0
    out_s += np.where(valid, (const * np.float32(factor_scale))[:, None], np.float32(0.0))
    return out_s, out_i


def int4_search(
    queries: np.ndarray,
    packed: np.ndarray,
    scales: np.ndarray,
    offsets: np.ndarray,
    k: int,
    *,
    factor_scale: float = 1.0,
    row_bias: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validated-input top-k over per-dimension int4 codes (see :func:`int8_search`).

    Scores are ``factor_scale * (q . x_hat) + row_bias`` with ``x_hat`` the
    dequantized rows; queries become int16 weights as for int8, with the
    largest weight chosen so that ``d * max|w| * 15`` fits int32.
    """
    nq, d = queries.shape
    n = packed.shape[0]
    qs = queries.astype(np.float64) * scales.astype(np.float64)
    peak = np.abs(qs).max(axis=1)
    w_max = float(min(32767, (2**31 - 1) // (15 * d)))
    factor = np.where(peak > 0, peak / w_max, 1.0)
    weights = np.rint(qs / factor[:, None]).astype(np.int16)
    const = (queries.astype(np.float64) @ offsets.astype(np.float64)).astype(np.float32)
    factor32 = (factor * factor_scale).astype(np.float32)
    bias = np.zeros(n, np.float32) if row_bias is None else row_bias
    out_s = np.empty((nq, k), np.float32)
    out_i = np.empty((nq, k), np.int64)
    if nq == 0:
        return out_s, out_i
    cand = np.empty((nq, 0), np.int64) if candidates is None else candidates
    work = nq * (n if candidates is None else cand.shape[1]) * d
    parallel = use_parallel(work, PARALLEL_MIN_WORK)
    kernel = _int4_topk_parallel if parallel else _int4_topk_serial
    kernel(weights, factor32, packed, bias, k, cand, out_s, out_i, _n_chunks(parallel, nq))
    out_s += np.where(out_i >= 0, (const * np.float32(factor_scale))[:, None], np.float32(0.0))
    return out_s, out_i


def float_search(
    queries: np.ndarray,
    vectors: np.ndarray,
    candidates: np.ndarray,
    k: int,
    *,
    rows: np.ndarray | None = None,
    factor: float = 1.0,
    row_bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validated-input float rescoring of candidates (see :func:`rescore_topk`)."""
    nq, d = queries.shape
    n = vectors.shape[0] if rows is None else rows.shape[0]
    rows = np.arange(n, dtype=np.int64) if rows is None else rows
    bias = np.zeros(n, np.float32) if row_bias is None else row_bias
    out_s = np.empty((nq, k), np.float32)
    out_i = np.empty((nq, k), np.int64)
    if nq == 0:
        return out_s, out_i
    parallel = use_parallel(nq * candidates.shape[1] * d * 4, PARALLEL_MIN_WORK)
    kernel = _float_topk_candidates_parallel if parallel else _float_topk_candidates_serial
    kernel(queries, vectors, rows, candidates, k, np.float32(factor), bias, out_s, out_i, _n_chunks(parallel, nq))
    return out_s, out_i


def hamming_search(query_codes: np.ndarray, codes: np.ndarray, k: int, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated-input Hamming top-k on uint8 rows of equal width (viewed as uint64 words when possible)."""
    nq, width = query_codes.shape
    n = codes.shape[0]
    if nq == 0:
        return np.empty((0, k), np.int32), np.empty((0, k), np.int64)
    if width % 8 == 0 and nq >= COLUMNS_MIN_QUERIES:
        # batches: transpose the database once (n * width bytes) for the vectorized kernel
        dbt = np.ascontiguousarray(codes.view(np.uint64).T)
        out_d = np.empty((nq, k), np.int32)
        out_i = np.empty((nq, k), np.int64)
        parallel = use_parallel(nq * n * width, PARALLEL_MIN_WORK)
        kernel = _hamming_topk_columns_parallel if parallel else _hamming_topk_columns_serial
        kernel(query_codes.view(np.uint64), dbt, k, n_bits, out_d, out_i, _n_chunks(parallel, nq))
        return out_d, out_i
    padded = -(-nq // 4) * 4  # the kernel takes queries four at a time
    if padded != nq:
        query_codes = np.concatenate([query_codes, np.repeat(query_codes[-1:], padded - nq, axis=0)])
    out_d = np.empty((padded, k), np.int32)
    out_i = np.empty((padded, k), np.int64)
    if width % 8 == 0:
        qw, dw = query_codes.view(np.uint64), codes.view(np.uint64)
    else:
        qw, dw = query_codes, codes
    parallel = use_parallel(nq * n * width, PARALLEL_MIN_WORK)
    kernel = _hamming_topk_parallel if parallel else _hamming_topk_serial
    kernel(qw, dw, k, n_bits, out_d, out_i, _n_chunks(parallel, padded // 4))
    return out_d[:nq], out_i[:nq]


# --------------------------------------------------------------- wrappers


def hamming_topk(query_codes: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``codes`` nearest to each query by Hamming distance.

    Parameters
    ----------
    query_codes : ndarray uint8 (n_queries, n_bytes) or (n_bytes,)
        Packed bits, e.g. from :func:`memstrata.kernels.binarize`.
    codes : ndarray uint8 (n, n_bytes)
    k : int
        Number of neighbours, ``>= 1``.

    Returns
    -------
    distances : ndarray int32 (n_queries, k)
        Ascending; ``-1`` where ``k > n``.
    indices : ndarray int64 (n_queries, k)
        Row numbers in ``codes``; ties go to the lower row; ``-1`` where ``k > n``.

    Notes
    -----
    O(n_queries · n · n_bytes / 8) popcounts; selection is a counting pass, so
    ``k`` costs nothing extra. Non-contiguous input is copied.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.kernels import hamming_topk
    >>> codes = np.array([[0b1111], [0b0001], [0b0000], [0b0011]], dtype=np.uint8)
    >>> hamming_topk(np.array([0b0001], np.uint8), codes, 3)
    (array([[0, 1, 1]], dtype=int32), array([[1, 2, 3]]))
    """
    q = _as_words("query_codes", query_codes, None)
    c = _as_words("codes", codes, q.shape[1])
    k = _check_k(k)
    return hamming_search(q, c, k, 8 * q.shape[1])


def int8_topk(
    queries: np.ndarray,
    codes: np.ndarray,
    scales: np.ndarray,
    offsets: np.ndarray,
    k: int,
    *,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products of float queries against per-dimension int8 codes.

    Parameters
    ----------
    queries : ndarray float32/float64 (n_queries, d) or (d,)
    codes, scales, offsets
        From :func:`memstrata.kernels.quantize_int8` with ``per="dimension"``.
    k : int
    candidates : ndarray int64 (n_queries, n_candidates), optional
        Search only these rows per query (``-1`` entries are skipped), e.g. the
        shortlist of a Hamming search.

    Returns
    -------
    scores : ndarray float32 (n_queries, k)
        ``q . dequantize(code)`` (queries are rounded to int16 weights first:
        relative error about 1e-4 of the largest term), best first; ``-inf``
        where fewer than ``k`` rows exist.
    indices : ndarray int64 (n_queries, k)
        Ties go to the lower row; ``-1`` in padding.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.kernels import quantize_int8, int8_topk
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], np.float32)
    >>> q = quantize_int8(x)
    >>> scores, ids = int8_topk(np.array([1.0, 0.1], np.float32), q.codes, q.scales, q.offsets, 2)
    >>> ids
    array([[0, 2]])
    """
    qf = as_float_matrix("queries", queries, allow_1d=True)
    if not isinstance(codes, np.ndarray) or codes.dtype != np.int8:
        raise TypeError(f"codes: expected int8 array of shape (n, {qf.shape[1]}), got {describe(codes)}")
    if codes.ndim != 2 or codes.shape[1] != qf.shape[1]:
        raise ValueError(f"codes: expected int8 array of shape (n, {qf.shape[1]}) to match queries, got {describe(codes)}")
    d = qf.shape[1]
    for name, value in (("scales", scales), ("offsets", offsets)):
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise TypeError(f"{name}: expected float32 array of shape ({d},), got {describe(value)}")
        if value.shape != (d,):
            raise ValueError(f"{name}: expected float32 array of shape ({d},) (per='dimension'), got {describe(value)}")
    if not np.isfinite(qf).all():
        raise ValueError("queries: expected finite values, got NaN or inf")
    k = _check_k(k)
    cand = None
    if candidates is not None:
        cand = _check_candidates(candidates, qf.shape[0], codes.shape[0])
    return int8_search(
        qf,
        np.ascontiguousarray(codes),
        np.ascontiguousarray(scales, np.float32),
        np.ascontiguousarray(offsets, np.float32),
        k,
        candidates=cand,
    )


def _check_candidates(candidates: Any, nq: int, n: int) -> np.ndarray:
    if not isinstance(candidates, np.ndarray) or candidates.dtype.kind not in "iu":
        raise TypeError(f"candidates: expected int64 array of shape ({nq}, n_candidates), got {describe(candidates)}")
    if candidates.ndim == 1 and nq == 1:
        candidates = candidates.reshape(1, -1)
    if candidates.ndim != 2 or candidates.shape[0] != nq:
        raise ValueError(f"candidates: expected int64 array of shape ({nq}, n_candidates), got {describe(candidates)}")
    cand = np.ascontiguousarray(candidates, dtype=np.int64)
    if cand.size and cand.max() >= n:
        raise ValueError(f"candidates: expected row numbers below {n} (or -1 to skip), got {int(cand.max())}")
    return cand


def rescore_topk(
    queries: np.ndarray, vectors: np.ndarray, candidates: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact float inner products of each query with its candidate rows; the best ``k``.

    Parameters
    ----------
    queries : ndarray float32/float64 (n_queries, d) or (d,)
    vectors : ndarray float32 (n, d)
        The float originals; a ``np.memmap`` works (only candidate rows are read).
    candidates : ndarray int64 (n_queries, n_candidates)
        Row numbers into ``vectors``; ``-1`` entries are skipped; a row listed
        twice is scored twice.
    k : int

    Returns
    -------
    scores : ndarray float32 (n_queries, k)
        Best first, ``-inf`` padding; float32 dot products summed in SIMD order.
    indices : ndarray int64 (n_queries, k)
        Row numbers; ties go to the lower row; ``-1`` padding.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.kernels import rescore_topk
    >>> v = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
    >>> rescore_topk(np.array([0.0, 1.0], np.float32), v, np.array([[0, 2, -1]]), 2)
    (array([[0.8, 0. ]], dtype=float32), array([[2, 0]]))
    """
    qf = as_float_matrix("queries", queries, allow_1d=True)
    d = qf.shape[1]
    if not isinstance(vectors, np.ndarray) or vectors.dtype != np.float32:
        raise TypeError(f"vectors: expected float32 array of shape (n, {d}), got {describe(vectors)}")
    if vectors.ndim != 2 or vectors.shape[1] != d:
        raise ValueError(f"vectors: expected float32 array of shape (n, {d}) to match queries, got {describe(vectors)}")
    if not np.isfinite(qf).all():
        raise ValueError("queries: expected finite values, got NaN or inf")
    k = _check_k(k)
    cand = _check_candidates(candidates, qf.shape[0], vectors.shape[0])
    base = np.ascontiguousarray(np.asarray(vectors))
    return float_search(qf, base, cand, k)
