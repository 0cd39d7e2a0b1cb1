"""Binarization: one sign bit per dimension, packed eight to a byte.

The layout is ``np.packbits(vectors > center, axis=1)``: dimension ``8m + k`` is
bit ``7 - k`` (most significant first) of byte ``m``; the unused low bits of the
last byte are zero when ``d`` is not a multiple of 8.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from memstrata.kernels._common import (
    as_float_matrix,
    check_float_vector,
    check_out,
    raise_not_finite,
    serial_and_parallel,
    use_parallel,
)

__all__ = ["PARALLEL_MIN_ELEMENTS", "binarize"]

#: Inputs with at least this many elements (n * d) use the ``parallel=True``
#: kernel when Numba has more than one thread.
PARALLEL_MIN_ELEMENTS = 1 << 21

# Multiplying a word of eight 0/1 bytes (byte k at bit 8k) by this constant puts
# byte k's bit at bit 63 - k and every cross term either above bit 63 or below
# bit 56, without carries, so the top byte is the eight bits, first byte first.
_GATHER = np.uint64(0x8040201008040201)


def _binarize(x, center, packed, n_chunks):  # pragma: no cover - compiled
    """Pack ``x > center`` row by row; returns the number of rows holding NaN/inf."""
    n, d = x.shape
    width = packed.shape[1]
    bad_c = np.zeros(n_chunks, np.int64)
    rows = (n + n_chunks - 1) // n_chunks
    # deliberate twin of quantize.py's _encode4 chunked row loop: each Numba
    # kernel keeps its own, so that its inner loop compiles to its own SIMD code
    for c in prange(n_chunks):
        # a row of 0/1 bytes, padded to whole 64-bit words; the compare loop vectorizes
        flags = np.zeros(width * 8, np.uint8)
        words = flags.view(np.uint64)
        nb = 0
        for i in range(c * rows, min(n, (c + 1) * rows)):
            rb = False
            for j in range(d):
                v = x[i, j]
                rb |= v - v != 0
                flags[j] = v > center[j]
            for m in range(width):
                packed[i, m] = np.uint8((words[m] * _GATHER) >> np.uint64(56))
            nb += rb
        bad_c[c] = nb
    return bad_c.sum()


_binarize_serial, _binarize_parallel = serial_and_parallel(_binarize)


def binarize(vectors: np.ndarray, center: np.ndarray | None = None, *, out: np.ndarray | None = None) -> np.ndarray:
    """Pack the sign bits of float vectors, eight dimensions per byte.

    Parameters
    ----------
    vectors : ndarray, float32 or float64, shape (n, d)
        Finite values. float64 or non-contiguous input is converted to a
        C-contiguous float32 copy.
    center : ndarray float32 (d,), optional
        Per-dimension threshold, e.g. the mean of a sample: a bit is set where
        ``vectors > center``. Default: zero. Centering spreads the bits of
        embeddings whose dimensions are not zero-mean, which keeps more of their
        neighbourhood structure.
    out : ndarray uint8 (n, (d + 7) // 8), optional
        Buffer for the result.

    Returns
    -------
    ndarray uint8 (n, (d + 7) // 8)
        Identical to ``np.packbits(vectors > center, axis=1)``.

    Raises
    ------
    TypeError
        ``vectors`` not a float array, ``center`` not a float array.
    ValueError
        Wrong shape, NaN/inf values.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.kernels import binarize
    >>> binarize(np.array([[0.5, -1.0, 2.0, 0.0, 1.0, 1.0, -3.0, 1.0, 0.25]], np.float32))
    array([[173, 128]], dtype=uint8)
    """
    x = as_float_matrix("vectors", vectors)
    n, d = x.shape
    if center is None:
        c = np.zeros(d, np.float32)
    else:
        c = check_float_vector("center", center, d)
    width = (d + 7) // 8
    packed = np.empty((n, width), np.uint8) if out is None else check_out("out", out, (n, width), np.uint8)
    if use_parallel(n * d, PARALLEL_MIN_ELEMENTS):
        import numba

        n_bad = _binarize_parallel(x, c, packed, 4 * numba.get_num_threads())
    else:
        n_bad = _binarize_serial(x, c, packed, 1)
    if n_bad:
        raise_not_finite("vectors", x)
    return packed
