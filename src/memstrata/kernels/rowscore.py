"""Kernels for rows kept out of RAM: sign-bit scores of a float query, and 64-bit row checksums.

Sign scores: a row's sign bits ``b`` (``np.packbits`` layout, most significant
bit first, see ``binary``) score ``w · b`` for a float weight ``w``, the
ranking of ``w · sign(x)``. :func:`sign_table` builds one table of 256 partial
sums per byte of the code (``table[j, v]`` = the sum of ``w`` over the bits set
in byte value ``v`` at byte ``j``); a row's score is then one lookup per byte.
In numpy that lookup is a gather into an (m, width) temporary and a sum
(~210 µs for 1024 rows of 48 bytes); compiled it is one pass (~90 µs).

Checksums: a row stored as 64-bit words is checked by ``Σ words[i, w] *
mult[w] + slot[i] * mult[-1] + 1`` modulo 2**64 over every word but its last,
which holds the expected value (odd multipliers are invertible modulo 2**64,
so a change in any one word changes the sum). numpy computes it through an
(m, words) temporary and three more passes (~35 µs for 128 rows of 51 words);
compiled, it is one pass over the row (~8 µs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sign_scores", "sign_table", "word_checksums"]

_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32)  # (256, 8)

_compiled: dict[str, Any] = {}


def _scores(table, bits, rows, out):  # pragma: no cover - compiled
    width = bits.shape[1]
    for p in range(rows.shape[0]):
        r = rows[p]
        acc = np.float32(0.0)
        for j in range(width):
            acc += table[j, bits[r, j]]
        out[p] = acc


def _checksums(words, mult, slots, out):  # pragma: no cover - compiled
    n_words = words.shape[1] - 1
    for i in range(words.shape[0]):
        acc = np.uint64(1) + np.uint64(slots[i]) * mult[n_words]
        for w in range(n_words):
            acc += words[i, w] * mult[w]
        out[i] = acc


def _kernel(fn: Any) -> Any:
    """``fn`` compiled on first use (never at import)."""
    kernel = _compiled.get(fn.__name__)
    if kernel is None:
        from numba import njit

        kernel = _compiled[fn.__name__] = njit(cache=True, nogil=True)(fn)
    return kernel


def sign_table(w: np.ndarray) -> np.ndarray:
    """The (width, 256) float32 table of partial sums of ``w`` (d,) per byte value, ``width = ceil(d / 8)``."""
    w = np.asarray(w, np.float32)
    if w.ndim != 1:
        raise ValueError(f"w: expected a 1-d array, got shape {w.shape}")
    width = (w.shape[0] + 7) // 8
    padded = np.zeros(8 * width, np.float32)
    padded[: w.shape[0]] = w
    return np.ascontiguousarray(padded.reshape(width, 8) @ _BYTE_BITS.T)


def sign_scores(table: np.ndarray, bits: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Scores (m,) float32 of the packed sign rows ``bits[rows]`` (uint8 (n, width)) through ``table`` (width, 256).

    Trusted input (the caller validated it once): ``table`` from
    :func:`sign_table`, ``bits`` uint8 with ``width`` columns, ``rows`` int64
    indices into ``bits``.
    """
    out = np.empty(rows.shape[0], np.float32)
    _kernel(_scores)(table, bits, rows, out)
    return out


def word_checksums(words: np.ndarray, mult: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """uint64 (m,): ``Σ_{w < W-1} words[i, w] * mult[w] + slots[i] * mult[W-1] + 1`` modulo 2**64.

    Trusted input: ``words`` uint64 (m, W), ``mult`` uint64 (W,), ``slots`` int64 (m,) non-negative.
    """
    out = np.empty(words.shape[0], np.uint64)
    _kernel(_checksums)(words, mult, slots, out)
    return out
