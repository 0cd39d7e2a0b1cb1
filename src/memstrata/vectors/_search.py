"""Search paths of VectorMemory: every call into a search kernel is in this module.

``search_codes`` ranks the codes (int8 / int4 / binary kernels, or BLAS for
float32), ``rescore`` re-ranks candidates on the float originals. Scores are
"higher is better": similarities for cosine / ip, ``2 q.x - |x|^2`` for l2
(the caller turns that into a squared distance).

Kernels are imported inside the functions: importing ``memstrata.vectors``
does not import Numba, and a float32 memory never does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from memstrata.vectors._args import unique_sorted

if TYPE_CHECKING:
    from memstrata.vectors._state import IndexState as VectorMemory

# rows decoded per block when int4 / float32 memories are searched with BLAS
BLOCK_ROWS = 8192


def decode(memory: VectorMemory, codes: np.ndarray) -> np.ndarray:
    """Codes back to float32 vectors (approximations except for the float32 codec)."""
    if memory.codec == "float32":
        return codes
    if memory.codec in ("int8", "int4"):
        from memstrata.kernels import dequantize_int4, dequantize_int8

        assert memory._scales is not None and memory._offsets is not None
        dequantize = dequantize_int8 if memory.codec == "int8" else dequantize_int4
        return dequantize(codes, memory._scales, memory._offsets)
    # binary: +-1 per bit, scaled to unit length
    bits = np.unpackbits(codes, axis=1, count=memory.dim).astype(np.float32)
    signs: np.ndarray = (2.0 * bits - 1.0) / np.float32(np.sqrt(memory.dim))
    return signs


#: A first batch smaller than this is too small to fit the codes' parameters on alone: the quantization
#: ranges are widened (:func:`memstrata.vectors._state.fitting_rows`) and the sign bits keep the origin.
SMALL_FIT_ROWS = 256


def sign_bits(memory: VectorMemory, x: np.ndarray) -> np.ndarray:
    """Sign bits of ``x`` around the memory's centre (fitted on the first batch)."""
    from memstrata.kernels import binarize

    if memory._center is None:
        # centering at the mean of the first batch spreads the bits of embeddings whose dimensions are not
        # zero-mean; the mean of a few rows is mostly those rows (one row would centre every later vector on
        # itself), so a small first batch keeps the origin
        if x.shape[0] >= SMALL_FIT_ROWS:
            memory._center = x.mean(axis=0).astype(np.float32)
        else:
            memory._center = np.zeros(x.shape[1], np.float32)
    bits: np.ndarray = binarize(x - memory._center)
    return bits


def search_rows(memory: VectorMemory, q: np.ndarray, k: int, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k over ``rows`` (or all rows); returns scores (higher better) and positions into ``rows``."""
    codes = memory._codes if rows is None else memory._codes[rows]
    bias = memory._row_bias if rows is None or memory._row_bias is None else memory._row_bias[rows]
    factor = 2.0 if memory.metric == "l2" else 1.0
    n = codes.shape[0]
    want = k if memory.rescore is None else min(n, memory._rescore_depth() * k) or 1
    if memory.codec == "int8":
        from memstrata.kernels import hamming_search, int8_search

        assert memory._scales is not None and memory._offsets is not None
        from memstrata.vectors._shortlist import shortlist_size

        cand = None
        size = shortlist_size(memory)
        if memory._bits is not None and size is not None and n > size:
            bits = memory._bits if rows is None else memory._bits[rows]
            _, cand = hamming_search(sign_bits(memory, q), bits, max(size, want))
        scores, found = int8_search(
            q, codes, memory._scales, memory._offsets, want, factor_scale=factor, row_bias=bias, candidates=cand
        )
    elif memory.codec == "int4":
        from memstrata.kernels import int4_search

        assert memory._scales is not None and memory._offsets is not None
        scores, found = int4_search(q, codes, memory._scales, memory._offsets, want, factor_scale=factor, row_bias=bias)
    elif memory.codec == "binary":
        from memstrata.kernels import hamming_search

        dist, found = hamming_search(sign_bits(memory, q), codes, want)
        scores = np.where(found >= 0, 1.0 - 2.0 * dist / memory.dim, -np.inf).astype(np.float32)
    else:
        scores, found = blas_topk(memory, q, codes, want, factor, bias)
    if memory.rescore is None:
        return scores, found
    assert memory._orig_rows is not None
    return rescore(memory, q, found, k, memory._orig_rows if rows is None else memory._orig_rows[rows], factor)


def rescore(
    memory: VectorMemory, q: np.ndarray, found: np.ndarray, k: int, orig_rows: np.ndarray, factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank candidate positions ``found`` on the float originals (only the candidates are read)."""
    from memstrata.kernels import float_search

    assert memory._originals is not None
    valid = found >= 0
    unique = unique_sorted(found[valid])
    vectors = memory._originals.take(orig_rows[unique])
    positions = np.where(valid, np.searchsorted(unique, np.maximum(found, 0)), -1).astype(np.int64)
    bias = -np.einsum("ij,ij->i", vectors, vectors).astype(np.float32) if memory.metric == "l2" else None
    scores, picked = float_search(q, vectors, positions, k, factor=factor, row_bias=bias)
    return scores, np.where(picked >= 0, unique[np.maximum(picked, 0)] if unique.size else -1, -1)


def blas_topk(
    memory: VectorMemory, q: np.ndarray, codes: np.ndarray, k: int, factor: float, bias: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over blocks with BLAS (the float32 codec); ties by lower row."""
    nq, n = q.shape[0], codes.shape[0]
    best_s = np.full((nq, 0), -np.inf, np.float32)
    best_i = np.full((nq, 0), -1, np.int64)
    for start in range(0, n, BLOCK_ROWS):
        block = decode(memory, codes[start : start + BLOCK_ROWS])
        s = (q @ block.T) * np.float32(factor)
        if bias is not None:
            s += bias[start : start + BLOCK_ROWS]
        idx = np.broadcast_to(np.arange(start, start + block.shape[0], dtype=np.int64), s.shape)
        best_s, best_i = keep_best(
            np.concatenate([best_s, s.astype(np.float32)], axis=1), np.concatenate([best_i, idx], axis=1), k
        )
    if best_s.shape[1] < k:
        pad = k - best_s.shape[1]
        best_s = np.concatenate([best_s, np.full((nq, pad), -np.inf, np.float32)], axis=1)
        best_i = np.concatenate([best_i, np.full((nq, pad), -1, np.int64)], axis=1)
    return best_s, best_i


def keep_best(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` columns per row, best first, ties to the lower id.

    ``argpartition`` finds the k-th score in linear time; only rows where ties
    at that score compete for the last places fall back to a full lexsort.
    """
    nq, m = scores.shape
    if m > k:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        above = (scores > kth).sum(axis=1)
        at = (scores == kth).sum(axis=1)
        exact = above + at == k  # no tie straddles the cut: the partition is the answer
        sel_s = np.take_along_axis(scores, part, axis=1)
        sel_i = np.take_along_axis(ids, part, axis=1)
        for r in np.flatnonzero(~exact):
            order = np.lexsort((ids[r], -scores[r]))[:k]
            sel_s[r], sel_i[r] = scores[r, order], ids[r, order]
        scores, ids = sel_s, sel_i
    order = np.lexsort((ids, -scores), axis=1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def near_duplicates(memory: VectorMemory, threshold: float, return_similarity: bool) -> Any:
    """Pairs of row-ordered ids with cosine similarity >= ``threshold`` (see ``VectorMemory.near_duplicates``)."""
    n = memory._ids.shape[0]
    if memory._originals is not None:
        assert memory._orig_rows is not None
        vectors = memory._originals.take(memory._orig_rows)
    else:
        vectors = np.asarray(decode(memory, memory._codes), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0).astype(np.float32)
    pairs_a: list[np.ndarray] = []
    pairs_b: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    for start in range(0, n, BLOCK_ROWS):
        s = unit[start : start + BLOCK_ROWS] @ unit[start:].T
        a, b = np.nonzero(s >= threshold)
        a_rows, b_rows = a + start, b + start
        keep = b_rows > a_rows
        pairs_a.append(a_rows[keep])
        pairs_b.append(b_rows[keep])
        sims.append(s[a[keep], b[keep]])
    a_all = np.concatenate(pairs_a) if pairs_a else np.empty(0, np.int64)
    b_all = np.concatenate(pairs_b) if pairs_b else np.empty(0, np.int64)
    order = np.lexsort((b_all, a_all))
    pairs = np.stack([memory._ids[a_all[order]], memory._ids[b_all[order]]], axis=1).astype(np.int64)
    if return_similarity:
        sim = np.concatenate(sims)[order] if sims else np.empty(0, np.float32)
        return pairs, sim.astype(np.float32)
    return pairs
