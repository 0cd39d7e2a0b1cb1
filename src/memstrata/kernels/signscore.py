"""Asymmetric sign-bit scores: a float query against rows kept only as packed sign bits.

A row's sign bits ``b`` (``np.packbits`` layout, most significant bit first,
see ``binary``) score ``w · b`` for a float weight ``w``, the ranking of
``w · sign(x)``. The caller builds one table of 256 partial sums per byte of
the code (``table[j, v]`` = the sum of ``w`` over the bits set in byte value
``v`` at byte ``j``); a row's score is then one lookup per byte. In numpy that
lookup is a gather into an (m, width) temporary and a sum; compiled it is one
pass over the bytes with no temporary.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sign_scores", "sign_table"]

_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32)  # (256, 8)

_compiled = None


def sign_table(w: np.ndarray) -> np.ndarray:
    """The (width, 256) float32 table of partial sums of ``w`` (d,) per byte value, ``width = ceil(d / 8)``."""
    w = np.asarray(w, np.float32)
    if w.ndim != 1:
        raise ValueError(f"w: expected a 1-d array, got shape {w.shape}")
    width = (w.shape[0] + 7) // 8
    padded = np.zeros(8 * width, np.float32)
    padded[: w.shape[0]] = w
    return np.ascontiguousarray(padded.reshape(width, 8) @ _BYTE_BITS.T)


def _scores(table, bits, rows, out):  # pragma: no cover - compiled
    width = bits.shape[1]
    for p in range(rows.shape[0]):
        r = rows[p]
        acc = np.float32(0.0)
        for j in range(width):
            acc += table[j, bits[r, j]]
        out[p] = acc


def sign_scores(table: np.ndarray, bits: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Scores (m,) float32 of the packed sign rows ``bits[rows]`` (uint8 (n, width)) through ``table`` (width, 256).

    Trusted input (the caller validated it once): ``table`` float32 C-contiguous
    from :func:`sign_table`, ``bits`` uint8 with ``width`` columns, ``rows``
    int64 indices into ``bits``.
    """
    global _compiled
    if _compiled is None:
        from numba import njit

        _compiled = njit(cache=True, nogil=True)(_scores)
    out = np.empty(rows.shape[0], np.float32)
    _compiled(table, bits, rows, out)
    return out
