"""Top-k search over codes: Hamming over packed bits, int8 inner products, float rescoring.

Public, validating wrappers around :mod:`memstrata.kernels.search` (which
documents the ranking: best first, ties to the lower row, ``-1`` padding).
Full scans run the compiled SIMD kernels; ``candidates`` lists the Numba ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memstrata.kernels._common import as_float_matrix, describe
from memstrata.kernels.search import check_candidates, check_k, float_search, hamming_search, int8_search

__all__ = ["hamming_topk", "int8_topk", "rescore_topk"]


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
    O(n_queries · n · n_bytes) bit operations in the compiled SIMD scan
    (``MEMSTRATA_SIMD`` picks the instruction path); the ``k`` best are kept
    in a heap per query, nothing else is sorted. Non-contiguous input is copied.

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
    k = check_k(k)
    return hamming_search(q, c, k)


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
    k = check_k(k)
    cand = None
    if candidates is not None:
        cand = check_candidates(candidates, qf.shape[0], codes.shape[0])
    return int8_search(
        qf,
        np.ascontiguousarray(codes),
        np.ascontiguousarray(scales, np.float32),
        np.ascontiguousarray(offsets, np.float32),
        k,
        candidates=cand,
    )


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
    k = check_k(k)
    cand = check_candidates(candidates, qf.shape[0], vectors.shape[0])
    base = np.ascontiguousarray(np.asarray(vectors))
    return float_search(qf, base, cand, k)
