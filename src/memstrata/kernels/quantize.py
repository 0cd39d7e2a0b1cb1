"""Scalar quantization of float vectors to int8 and int4 codes (decoding: ``dequantize``).

Scheme (per dimension, or per vector): the range ``[lo, hi]`` is split into 255
(int8) or 15 (int4) equal steps of size ``scale = (hi - lo) / levels``; a value
``x`` becomes ``round_half_up((x - lo) / scale)``, clamped to the range. int8
codes are stored signed (``code - 128``) so that int8 dot products work on them
directly; int4 codes are packed two per byte, dimension ``2m`` in the low nibble
and ``2m + 1`` in the high nibble (the last high nibble is zero when ``d`` is
odd). Reconstruction error is at most half a step for values inside the range.

``clip`` fits the range to per-dimension quantiles instead of min/max: outliers
are clamped, and every other value gets a finer step.

Arithmetic is float32 in a fixed order, so codes are identical to the numpy
reference in ``tests/reference.py``. This module holds the public functions
and the encoders; the ranges and steps are fitted in :mod:`memstrata.kernels._ranges`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from memstrata.kernels._common import (
    as_float_matrix,
    check_float_vector,
    check_out,
    public_face,
    raise_not_finite,
    serial_and_parallel,
    use_parallel,
)
from memstrata.kernels._ranges import _check_clip, _fit_dimension, _fit_row, _inverse_steps

__all__ = [
    "PARALLEL_MIN_ELEMENTS",
    "Quantized",
    "quantize_int4",
    "quantize_int8",
]

#: Inputs with at least this many elements (n * d) use the ``parallel=True``
#: kernels when Numba has more than one thread (``benchmarks/bench_vectors_codes.py``,
#: groups ``*-threads``): below it, thread start-up costs more than it saves.
PARALLEL_MIN_ELEMENTS = 1 << 21

_PERS = ("dimension", "vector")


class Quantized(NamedTuple):
    """Codes and the parameters that decode them.

    ``scales`` and ``offsets`` are float32 with shape ``(d,)`` for
    ``per="dimension"`` and ``(n,)`` for ``per="vector"``; a value decodes to
    ``code_unsigned * scale + offset``.
    """

    codes: np.ndarray
    scales: np.ndarray
    offsets: np.ndarray


# --------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True, inline="always")
def _level(v, lo, inv, top):  # pragma: no cover - compiled
    """The level of ``v`` on the grid ``lo + k / inv``: rounded half up, clamped to ``[0, top]``.

    Inlined into each encoder's loop (Numba IR inlining), so the loops still vectorize.
    """
    t = np.floor((v - lo) * inv + np.float32(0.5))
    return np.int32(min(max(t, np.float32(0.0)), top))


def _encode_dim(x, lo, inv, levels, codes):  # pragma: no cover - compiled
    """Per-dimension int8 codes (``levels`` 255) into ``codes``; returns rows with NaN/inf."""
    n, d = x.shape
    top = np.float32(levels)
    n_bad = 0
    for i in prange(n):
        rb = False
        for j in range(d):
            v = x[i, j]
            rb |= v - v != 0
            codes[i, j] = np.int8(_level(v, lo[j], inv[j], top) - 128)
        n_bad += rb
    return n_bad


def _encode_vec(x, levels, codes, scales, offsets):  # pragma: no cover - compiled
    """Per-vector int8 codes; a row whose range overflows float32 gets scale inf."""
    n, d = x.shape
    top = np.float32(levels)
    n_bad = 0
    for i in prange(n):
        rb, lo, inv = _fit_row(x[i], top, scales, offsets, i)
        for j in range(d):
            codes[i, j] = np.int8(_level(x[i, j], lo, inv, top) - 128)
        n_bad += rb
    return n_bad


def _pack_nibbles(nib, pairs, packed_row):  # pragma: no cover - compiled
    """Pack a row of 4-bit codes (one per byte in ``nib``; ``pairs`` is its uint16 view)."""
    # little-endian: pair m holds code 2m in its low byte and code 2m + 1 in its high byte
    for m in range(packed_row.shape[0]):
        w = pairs[m]
        packed_row[m] = np.uint8((w & 0x0F) | ((w >> 4) & 0xF0))


_pack_nibbles = njit(cache=True, nogil=True)(_pack_nibbles)


def _encode4(x, lo, inv, packed, scales, offsets, n_chunks, per_vector):  # pragma: no cover - compiled
    """int4 codes packed two per byte; returns rows with NaN/inf.

    Per dimension (``per_vector`` false) on the grids ``lo``/``inv``; per vector,
    each row's grid is fitted into ``scales[i]``/``offsets[i]`` first. Codes go to a
    row of bytes (the same SIMD loop as int8), then pairs of bytes are packed
    through a uint16 view, so no loop reads with stride 2. The branch is taken
    once a row; each of its inner loops vectorizes on its own.
    """
    # deliberate twin of binary.py's _binarize chunked row loop: each kernel keeps its own loop so
    # that its inner loop compiles to its own SIMD code
    n, d = x.shape
    width = packed.shape[1]
    top = np.float32(15.0)
    bad_c = np.zeros(n_chunks, np.int64)
    rows = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        nib = np.zeros(2 * width, np.uint8)  # the byte after an odd d stays 0
        pairs = nib.view(np.uint16)
        nb = 0
        for i in range(c * rows, min(n, (c + 1) * rows)):
            if per_vector:
                rb, lo_i, inv_i = _fit_row(x[i], top, scales, offsets, i)
                for j in range(d):
                    nib[j] = np.uint8(_level(x[i, j], lo_i, inv_i, top))
            else:
                rb = False
                for j in range(d):
                    v = x[i, j]
                    rb |= v - v != 0
                    nib[j] = np.uint8(_level(v, lo[j], inv[j], top))
            _pack_nibbles(nib, pairs, packed[i])
            nb += rb
        bad_c[c] = nb
    return bad_c.sum()


_encode_dim_serial, _encode_dim_parallel = serial_and_parallel(_encode_dim)
_encode_vec_serial, _encode_vec_parallel = serial_and_parallel(_encode_vec)
_encode4_serial, _encode4_parallel = serial_and_parallel(_encode4)

#: The encoders of each ``levels``, as (serial, parallel) by ``per``: indexed by ``use_parallel``'s answer.
#: The int8 kernels take ``levels``; the int4 one a chunk count (its rows are packed per chunk) and ``per``.
_ENCODERS = {
    ("dimension", 255): (_encode_dim_serial, _encode_dim_parallel),
    ("vector", 255): (_encode_vec_serial, _encode_vec_parallel),
    ("dimension", 15): (_encode4_serial, _encode4_parallel),
    ("vector", 15): (_encode4_serial, _encode4_parallel),
}
#: The per-dimension grids the per-vector int4 encoder is handed and does not read.
_NO_GRID = np.zeros(0, np.float32)


# -------------------------------------------------------------------- wrappers


def _n_chunks(parallel: bool, n: int) -> int:
    if not parallel:
        return 1
    import numba

    return max(1, min(n, 4 * numba.get_num_threads()))


def _check_per(per: Any) -> str:
    if per not in _PERS:
        raise ValueError(f"per: expected 'dimension' or 'vector', got {per!r}")
    return str(per)


def _quantize(
    levels: int,
    vectors: np.ndarray,
    per: str = "dimension",
    *,
    clip: float | None = None,
    scales: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> Quantized:
    """The body of :func:`quantize_int8` (``levels=255``) and :func:`quantize_int4` (``levels=15``)."""
    x = as_float_matrix("vectors", vectors)
    per = _check_per(per)
    clip = _check_clip(clip, per)
    n, d = x.shape
    width = d if levels == 255 else (d + 1) // 2
    code_dtype = np.int8 if levels == 255 else np.uint8
    codes = (
        np.empty((n, width), code_dtype) if out is None else check_out("out", out, (n, width), code_dtype)
    )
    parallel = use_parallel(n * d, PARALLEL_MIN_ELEMENTS)
    if per == "vector":
        if scales is not None or offsets is not None:
            raise ValueError("scales: fixed scales/offsets need per='dimension'; pass scales=None with per='vector'")
        s = np.empty(n, np.float32)
        o = np.empty(n, np.float32)
        if levels == 255:
            args: tuple[Any, ...] = (x, levels, codes, s, o)
        else:
            args = (x, _NO_GRID, _NO_GRID, codes, s, o, _n_chunks(parallel, n), True)
    else:
        s, o, inv = _dimension_steps(x, levels, clip, parallel, scales, offsets)
        if levels == 255:
            args = (x, o, inv, levels, codes)
        else:
            args = (x, o, inv, codes, _NO_GRID, _NO_GRID, _n_chunks(parallel, n), False)
    if _ENCODERS[per, levels][parallel](*args):
        raise_not_finite("vectors", x)
    if per == "vector" and np.isinf(s).any():
        raise ValueError(
            "vectors: expected a value range (max - min) of each vector that fits float32, "
            "got one that overflows; rescale the vectors first"
        )
    return Quantized(codes, s, o)


def _dimension_steps(
    x: np.ndarray, levels: int, clip: float | None, parallel: bool, scales: Any, offsets: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, offsets and inverse steps of ``per="dimension"``: fitted to ``x``, or the given ones checked."""
    d = x.shape[1]
    if (scales is None) != (offsets is None):
        raise ValueError("scales: pass both scales and offsets (from an earlier call) or neither")
    if scales is None:
        s, o = _fit_dimension(x, levels, clip, parallel)
    else:
        if clip is not None:
            raise ValueError("clip: fixed scales/offsets were given, so there is nothing to fit; pass clip=None")
        s = check_float_vector("scales", scales, d, "one step per dimension")
        o = check_float_vector("offsets", offsets, d, "one minimum per dimension")
        if (s < 0).any():
            raise ValueError("scales: expected non-negative steps, got a negative one")
    s, inv = _inverse_steps(s)
    return s, o, inv


quantize_int8 = public_face(
    _quantize,
    255,
    "quantize_int8",
    """Quantize float vectors to int8 codes, one byte per value.

    Parameters
    ----------
    vectors : ndarray, float32 or float64, shape (n, d)
        Finite values. float64 or non-contiguous input is converted to a
        C-contiguous float32 copy; otherwise nothing is copied.
    per : {"dimension", "vector"}
        Fit one range per dimension (shared by all vectors; the usual choice
        for embeddings) or one per vector (self-contained rows).
    clip : float, optional
        With ``per="dimension"``: fit each range to the ``1 - clip`` and
        ``clip`` quantiles instead of min/max (e.g. ``0.9999``). Values outside
        are clamped.
    scales, offsets : ndarray float32 (d,), optional
        Reuse the parameters of an earlier ``per="dimension"`` call instead of
        fitting new ones (values outside the range are clamped).
    out : ndarray int8 (n, d), optional
        Buffer for the codes.

    Returns
    -------
    Quantized
        ``(codes, scales, offsets)``: int8 codes of shape (n, d) holding
        ``round((x - offset) / scale) - 128``; float32 parameters of shape (d,)
        or (n,).

    Raises
    ------
    TypeError
        ``vectors`` not a float array, or ``out`` of the wrong dtype.
    ValueError
        Wrong shape, NaN/inf values, a range that overflows float32, or a bad
        ``per``/``clip``/``scales``/``offsets``.

    Notes
    -----
    O(n·d): one pass to fit min/max per dimension, one to encode (a single pass
    with ``per="vector"`` or fixed parameters). ``n == 0`` gives empty codes.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.kernels import quantize_int8, dequantize_int8
    >>> x = np.array([[0.0, 1.0], [1.0, -1.0]], dtype=np.float32)
    >>> q = quantize_int8(x)
    >>> q.codes
    array([[-128,  127],
           [ 127, -128]], dtype=int8)
    >>> bool(np.abs(dequantize_int8(q.codes, q.scales, q.offsets) - x).max() <= q.scales.max() / 2)
    True
    """,
)


quantize_int4 = public_face(
    _quantize,
    15,
    "quantize_int4",
    """Quantize float vectors to 4-bit codes, two per byte.

    Same parameters and rules as :func:`quantize_int8`, with 15 steps instead
    of 255. Codes are uint8 of shape ``(n, (d + 1) // 2)``: dimension ``2m`` in
    the low nibble of byte ``m``, dimension ``2m + 1`` in the high nibble; for
    odd ``d`` the last high nibble is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.kernels import quantize_int4, dequantize_int4
    >>> x = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]], dtype=np.float32)
    >>> q = quantize_int4(x)
    >>> q.codes
    array([[240,   0],
           [ 15,   0]], dtype=uint8)
    >>> dequantize_int4(q.codes, q.scales, q.offsets)
    array([[0. , 1. , 0.5],
           [1. , 0. , 0.5]], dtype=float32)
    """,
)
