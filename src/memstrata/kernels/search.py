"""Validated-input top-k searches: the seam ``VectorMemory`` and the public wrappers call.

Inputs arrive checked (shapes, dtypes, finite values); each function picks the
kernel: the compiled SIMD scans of ``memstrata._native.simd`` for full scans
(the instruction path from :func:`memstrata.kernels.simd.simd_path`), the
Numba kernels of ``memstrata.kernels.candidates`` for candidate lists.

Ranking is deterministic: best score first, ties broken by the lower row index
(the order ``np.lexsort((index, -score))`` gives). When ``k`` exceeds the number
of rows (or of valid candidates), trailing columns hold index ``-1`` with
distance ``-1`` (Hamming) or score ``-inf``.

int8 and int4 search turn each float query into int16 weights
``w = round(q * scale / a)`` (one factor ``a`` per query), so the inner loop is
an exact integer dot product with int32 sums, the same integers on every
instruction path; the float score is ``a * dot + sum(q * bias)``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from memstrata.kernels import candidates as _cand
from memstrata.kernels._common import describe, public_face, use_parallel
from memstrata.kernels.simd import simd_path

__all__ = [
    "PARALLEL_MIN_WORK",
    "check_candidates",
    "check_k",
    "float_search",
    "hamming_search",
    "int4_search",
    "int4_weights",
    "int8_search",
    "query_weights",
]

#: Searches with at least this many query x row x dimension operations run on
#: Numba's threads (``numba.set_num_threads``) when it has more than one: the
#: ``parallel=True`` kernels for candidate lists, query ranges of the compiled
#: scans on a thread pool otherwise.
PARALLEL_MIN_WORK = 1 << 24

# queries per batch of the compiled scans (MS_BLOCK_QUERIES in native/ms_simd.h)
_SCAN_BATCH = 64


def check_k(k: Any) -> int:
    """``k`` as an int; ``ValueError`` unless it is a positive integer (bools refused)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    return int(k)


def check_candidates(candidates: Any, nq: int, n: int) -> np.ndarray:
    """Candidate row lists as C-contiguous int64 (nq, m); ``-1`` entries mean "none"."""
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


def _n_chunks(parallel: bool, nq: int) -> int:
    if not parallel:
        return 1
    import numba

    return max(1, min(nq, 4 * numba.get_num_threads()))


def _scan_threads(nq: int, work: int) -> int:
    """Threads for a compiled full scan: Numba's thread count for big searches, one query batch each at least."""
    if not use_parallel(work, PARALLEL_MIN_WORK):
        return 1
    import numba

    return max(1, min(numba.get_num_threads(), nq // _SCAN_BATCH))


def _run_scan(nq: int, threads: int, scan: Callable[[slice], None]) -> None:
    """Run ``scan`` over query ranges on ``threads`` threads (the compiled scans release the GIL)."""
    if threads <= 1:
        scan(slice(0, nq))
        return
    per = -(-nq // threads)
    per = -(-per // _SCAN_BATCH) * _SCAN_BATCH  # whole batches, so each thread reads the codes once per batch
    parts = [slice(a, min(nq, a + per)) for a in range(0, nq, per)]
    with ThreadPoolExecutor(len(parts)) as pool:
        list(pool.map(scan, parts))


# deliberate twin of tests/reference.py _query_weights_ref: a reference shares no code with what it checks
def _weights(queries: np.ndarray, scales: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """int16 weights and per-query factors; the largest weight keeps ``d * max|w| * top`` within int32."""
    d = queries.shape[1]
    qs = queries.astype(np.float64) * scales.astype(np.float64)
    peak = np.abs(qs).max(axis=1)
    w_max = float(min(32767, (2**31 - 1) // (top * d)))
    factor = np.where(peak > 0, peak / w_max, 1.0)
    return np.rint(qs / factor[:, None]).astype(np.int16), factor


def query_weights(
    queries: np.ndarray, scales: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int16 weights, per-query factor and constant for int8 search (codes are ``u - 128``)."""
    weights, factor = _weights(queries, scales, 128)
    bias = offsets.astype(np.float64) + 128.0 * scales.astype(np.float64)
    const = queries.astype(np.float64) @ bias
    return weights, factor.astype(np.float32), const.astype(np.float32)


def int4_weights(
    queries: np.ndarray, scales: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int16 weights, per-query factor (float64) and constant for int4 search (codes in [0, 15])."""
    weights, factor = _weights(queries, scales, 15)
    const = (queries.astype(np.float64) @ offsets.astype(np.float64)).astype(np.float32)
    return weights, factor, const


def _outputs(nq: int, n: int, k: int, row_bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The row bias (float32, zeros when none) and the empty ``(scores, indices)`` outputs."""
    bias = np.zeros(n, np.float32) if row_bias is None else np.ascontiguousarray(row_bias, np.float32)
    return bias, np.empty((nq, k), np.float32), np.empty((nq, k), np.int64)


def _numba_kernel(work: int, nq: int, serial: Any, parallel: Any) -> tuple[Any, int]:
    """The serial or the ``parallel=True`` twin for this much work, and its number of chunks."""
    use = use_parallel(work, PARALLEL_MIN_WORK)
    return (parallel if use else serial), _n_chunks(use, nq)


def _add_const(out_s: np.ndarray, out_i: np.ndarray, const: np.ndarray) -> None:
    out_s += np.where(out_i >= 0, const[:, None], np.float32(0.0))


def _code_search(
    bits: int,
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
    """The body of :func:`int8_search` (``bits=8``) and :func:`int4_search` (``bits=4``)."""
    from memstrata._native import simd

    nq, d = queries.shape
    n = codes.shape[0]
    weights, factor, const = (query_weights if bits == 8 else int4_weights)(queries, scales, offsets)
    factor32 = (factor * factor_scale).astype(np.float32)
    bias, out_s, out_i = _outputs(nq, n, k, row_bias)
    if nq == 0:
        return out_s, out_i
    if candidates is None:
        path = simd_path()
        if bits == 8:

            def scan(part: slice) -> None:
                simd.int8_scan(weights[part], factor32[part], codes, bias, k, out_s[part], out_i[part], path)

        else:
            split = _even_then_odd(weights)

            def scan(part: slice) -> None:
                simd.int4_scan(split[part], factor32[part], codes, d, bias, k, out_s[part], out_i[part], path)

        _run_scan(nq, _scan_threads(nq, nq * n * d), scan)
    else:
        twins = _CANDIDATE_KERNELS[bits]
        kernel, chunks = _numba_kernel(nq * candidates.shape[1] * d, nq, *twins)
        kernel(weights, factor32, codes, bias, candidates, k, out_s, out_i, chunks)
    _add_const(out_s, out_i, const * np.float32(factor_scale))
    return out_s, out_i


def _even_then_odd(weights: np.ndarray) -> np.ndarray:
    """The int4 SIMD kernel's weight order: the even dimensions, then the odd ones (an odd last one at the end)."""
    d = weights.shape[1]
    half = d // 2
    split = np.empty_like(weights)
    split[:, :half] = weights[:, 0 : 2 * half : 2]
    split[:, half : 2 * half] = weights[:, 1 : 2 * half : 2]
    if d & 1:
        split[:, 2 * half] = weights[:, d - 1]
    return split


#: the serial and ``parallel=True`` candidate-list kernels of each code width
_CANDIDATE_KERNELS = {
    8: (_cand._int8_topk_candidates_serial, _cand._int8_topk_candidates_parallel),
    4: (_cand._int4_topk_serial, _cand._int4_topk_parallel),
}


int8_search = public_face(
    _code_search,
    8,
    "int8_search",
    """int8 top-k: scores ``factor_scale * (q . x_hat) + row_bias`` with ``x_hat`` the dequantized rows.

    ``factor_scale=2`` with ``row_bias=-|x_hat|^2`` ranks by L2. Full scans run
    the compiled SIMD kernel; ``candidates`` (int64 (nq, m), ``-1`` skipped)
    the Numba one.
    """,
)


int4_search = public_face(
    _code_search,
    4,
    "int4_search",
    """Top-k over per-dimension int4 codes packed two per byte (see :func:`int8_search`).""",
)


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
    """Float rescoring of candidates: top-k of ``factor * (q . vectors[rows[i]]) + row_bias[i]``."""
    nq, d = queries.shape
    n = vectors.shape[0] if rows is None else rows.shape[0]
    rows = np.arange(n, dtype=np.int64) if rows is None else rows
    bias = np.zeros(n, np.float32) if row_bias is None else row_bias
    out_s = np.empty((nq, k), np.float32)
    out_i = np.empty((nq, k), np.int64)
    if nq == 0:
        return out_s, out_i
    parallel = use_parallel(nq * candidates.shape[1] * d * 4, PARALLEL_MIN_WORK)
    kernel = _cand._float_topk_candidates_parallel if parallel else _cand._float_topk_candidates_serial
    kernel(queries, vectors, rows, candidates, k, np.float32(factor), bias, out_s, out_i, _n_chunks(parallel, nq))
    return out_s, out_i


def hamming_search(query_codes: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hamming top-k of uint8 rows of equal width: distances int32 ascending, rows int64; ``-1`` padding."""
    from memstrata._native import simd

    nq = query_codes.shape[0]
    out_d = np.empty((nq, k), np.int32)
    out_i = np.empty((nq, k), np.int64)
    if nq:
        path = simd_path()
        q, c = np.ascontiguousarray(query_codes), np.ascontiguousarray(codes)

        def scan(part: slice) -> None:
            simd.hamming_scan(q[part], c, k, out_d[part], out_i[part], path)

        _run_scan(nq, _scan_threads(nq, nq * c.shape[0] * c.shape[1] // 8), scan)
    return out_d, out_i
