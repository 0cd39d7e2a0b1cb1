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
reference in ``tests/reference.py``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from memstrata.kernels._common import (
    as_float_matrix,
    check_out,
    describe,
    parallel_twin_source,
    raise_not_finite,
    use_parallel,
)

__all__ = [
    "PARALLEL_MIN_ELEMENTS",
    "Quantized",
    "quantize_int4",
    "quantize_int8",
]

#: Inputs with at least this many elements (n * d) use the ``parallel=True``
#: kernels when Numba has more than one thread (``benchmarks/bench_vectors.py``,
#: groups ``*-threads``): below it, thread start-up costs more than it saves.
PARALLEL_MIN_ELEMENTS = 1 << 21

# A step below the smallest normal float32 would make 1/step overflow; such a
# column (range below ~3e-36) is stored as constant.
_MIN_STEP = np.float32(np.finfo(np.float32).tiny)
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


def _minmax_columns(x, n_chunks):  # pragma: no cover - compiled
    """Per-column min and max of ``x`` (n, d), and a count that is non-zero when any value is NaN/inf."""
    n, d = x.shape
    lo_c = np.empty((n_chunks, d), np.float32)
    hi_c = np.empty((n_chunks, d), np.float32)
    bad_c = np.zeros(n_chunks, np.int64)
    rows = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = lo_c[c]
        hi = hi_c[c]
        for j in range(d):
            lo[j] = np.inf
            hi[j] = -np.inf
        nb = 0
        r0 = c * rows
        r1 = min(n, (c + 1) * rows)
        r4 = r0 + (max(r1 - r0, 0) // 4) * 4
        # four rows per pass over lo/hi: a quarter of the loads and stores of the
        # running extremes; compare-and-select on loaded values, which vectorizes
        for i in range(r0, r4, 4):
            rb = False
            for j in range(d):
                v0 = x[i, j]
                v1 = x[i + 1, j]
                v2 = x[i + 2, j]
                v3 = x[i + 3, j]
                rb |= (v0 - v0 != 0) | (v1 - v1 != 0) | (v2 - v2 != 0) | (v3 - v3 != 0)  # NaN/inf only
                m01 = v0 if v0 < v1 else v1
                m23 = v2 if v2 < v3 else v3
                mn = m01 if m01 < m23 else m23
                x01 = v0 if v0 > v1 else v1
                x23 = v2 if v2 > v3 else v3
                mx = x01 if x01 > x23 else x23
                a = lo[j]
                b = hi[j]
                lo[j] = mn if mn < a else a
                hi[j] = mx if mx > b else b
            nb += rb
        for i in range(r4, r1):
            rb = False
            for j in range(d):
                v = x[i, j]
                rb |= v - v != 0
                a = lo[j]
                b = hi[j]
                lo[j] = v if v < a else a
                hi[j] = v if v > b else b
            nb += rb
        bad_c[c] = nb
    lo = lo_c[0].copy()
    hi = hi_c[0].copy()
    for c in range(1, n_chunks):
        for j in range(d):
            lo[j] = min(lo[j], lo_c[c, j])
            hi[j] = max(hi[j], hi_c[c, j])
    return lo, hi, bad_c.sum()


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


def _row_minmax(row):  # pragma: no cover - compiled
    """Min and max of a non-empty row, as a SIMD reduction.

    Compiled with no-NaN fast-math so the reduction vectorizes; callers detect
    NaN/inf in a separate exact loop and discard the result when there is any.
    """
    lo = row[0]
    hi = row[0]
    for j in range(1, row.shape[0]):
        v = row[j]
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


_row_minmax = njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz"})(_row_minmax)


@njit(cache=True, nogil=True)
def _vector_step(lo, hi, top):  # pragma: no cover - compiled
    """Step and inverse step of one row's ``top + 1`` levels over ``[lo, hi]``.

    A constant row (or one narrower than ``_MIN_STEP``) gets step 0, so every
    code is 0 and decodes to ``lo``; a range that overflows float32 gets step
    inf with inverse 0, which the wrapper reports as non-finite input.
    """
    s = (hi - lo) / top
    if s >= _MIN_STEP and s < np.inf:
        return s, np.float32(1.0) / s
    if s < np.inf:
        return np.float32(0.0), np.float32(0.0)
    return s, np.float32(0.0)


@njit(cache=True, nogil=True)
def _fit_row(row, top, scales, offsets, i):  # pragma: no cover - compiled
    """Fit row ``i``'s range (``scales[i]``, ``offsets[i]``); returns ``(has NaN/inf, lo, inverse step)``.

    The NaN/inf check is its own exact loop: ``_row_minmax`` is compiled without NaN semantics.
    """
    rb = False
    for j in range(row.shape[0]):
        v = row[j]
        rb |= v - v != 0
    lo, hi = _row_minmax(row)
    s, inv = _vector_step(lo, hi, top)
    scales[i] = s
    offsets[i] = lo
    return rb, lo, inv


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


def _encode4_dim(x, lo, inv, packed, n_chunks):  # pragma: no cover - compiled
    """Per-dimension int4 codes packed two per byte; returns rows with NaN/inf.

    Codes go to a row of bytes first (the same SIMD loop as int8), then pairs
    of bytes are packed through a uint16 view, so no loop reads with stride 2.
    """
    # deliberate twin of binary.py's _binarize chunked row loop (and _encode4_vec's): each kernel
    # keeps its own loop so that its inner loop compiles to its own SIMD code
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
            rb = False
            for j in range(d):
                v = x[i, j]
                rb |= v - v != 0
                nib[j] = np.uint8(_level(v, lo[j], inv[j], top))
            _pack_nibbles(nib, pairs, packed[i])
            nb += rb
        bad_c[c] = nb
    return bad_c.sum()


def _encode4_vec(x, packed, scales, offsets, n_chunks):  # pragma: no cover - compiled
    n, d = x.shape
    width = packed.shape[1]
    top = np.float32(15.0)
    bad_c = np.zeros(n_chunks, np.int64)
    rows = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        nib = np.zeros(2 * width, np.uint8)
        pairs = nib.view(np.uint16)
        nb = 0
        for i in range(c * rows, min(n, (c + 1) * rows)):
            rb, lo, inv = _fit_row(x[i], top, scales, offsets, i)
            for j in range(d):
                nib[j] = np.uint8(_level(x[i, j], lo, inv, top))
            _pack_nibbles(nib, pairs, packed[i])
            nb += rb
        bad_c[c] = nb
    return bad_c.sum()


# deliberate twins of every kernel module's serial/parallel declarations: test_kernels_build.py's
# AST scan reads cache=True and nogil=True at each njit call, so each declaration stays explicit
_minmax_columns_serial = njit(cache=True, nogil=True)(_minmax_columns)
_minmax_columns_parallel = njit(cache=True, nogil=True, parallel=True)(parallel_twin_source(_minmax_columns))
_encode_dim_serial = njit(cache=True, nogil=True)(_encode_dim)
_encode_dim_parallel = njit(cache=True, nogil=True, parallel=True)(parallel_twin_source(_encode_dim))
_encode_vec_serial = njit(cache=True, nogil=True)(_encode_vec)
_encode_vec_parallel = njit(cache=True, nogil=True, parallel=True)(parallel_twin_source(_encode_vec))
_encode4_dim_serial = njit(cache=True, nogil=True)(_encode4_dim)
_encode4_dim_parallel = njit(cache=True, nogil=True, parallel=True)(parallel_twin_source(_encode4_dim))
_encode4_vec_serial = njit(cache=True, nogil=True)(_encode4_vec)
_encode4_vec_parallel = njit(cache=True, nogil=True, parallel=True)(parallel_twin_source(_encode4_vec))


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


def _check_params(name: str, value: Any, length: int, what: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        raise TypeError(f"{name}: expected float32 array of shape ({length},) ({what}), got {describe(value)}")
    if value.shape != (length,):
        raise ValueError(f"{name}: expected float32 array of shape ({length},) ({what}), got {describe(value)}")
    value = np.ascontiguousarray(value, dtype=np.float32)
    if not np.isfinite(value).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return value


def _inverse_steps(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(scales, 1/scales)`` with steps below the smallest normal float32 set to 0 (constant columns)."""
    scales = np.where(scales >= _MIN_STEP, scales, np.float32(0.0)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(scales > 0, np.float32(1.0) / np.where(scales > 0, scales, np.float32(1.0)), np.float32(0.0))
    return scales, inv.astype(np.float32)


def _fit_dimension(x: np.ndarray, levels: int, clip: float | None, parallel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension ``(scales, offsets)`` from min/max (or quantiles with ``clip``)."""
    if x.shape[0] == 0:
        return np.zeros(x.shape[1], np.float32), np.zeros(x.shape[1], np.float32)
    if parallel:
        import numba

        lo, hi, n_bad = _minmax_columns_parallel(x, 4 * numba.get_num_threads())
    else:
        lo, hi, n_bad = _minmax_columns_serial(x, 1)
    if n_bad:
        raise_not_finite("vectors", x)
    if clip is not None:
        lo, hi = np.quantile(x, [1.0 - clip, clip], axis=0).astype(np.float32)
    with np.errstate(over="ignore"):
        span = hi - lo
    if not np.isfinite(span).all():
        raise ValueError(
            "vectors: expected a value range (max - min) of each dimension that fits float32, "
            "got one that overflows; rescale the vectors first"
        )
    return (span / np.float32(levels)).astype(np.float32), lo


def _check_clip(clip: Any, per: str) -> float | None:
    if clip is None:
        return None
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0.5 < float(clip) <= 1.0:
        raise ValueError(f"clip: expected a quantile in (0.5, 1.0] or None, got {clip!r}")
    if per != "dimension":
        raise ValueError("clip: only supported with per='dimension'; pass clip=None with per='vector'")
    return float(clip)


def _quantize(
    vectors: Any,
    per: Any,
    clip: Any,
    scales: Any,
    offsets: Any,
    out: Any,
    levels: int,
) -> Quantized:
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
            kernel = _encode_vec_parallel if parallel else _encode_vec_serial
            n_bad = kernel(x, levels, codes, s, o)
        else:
            kernel4 = _encode4_vec_parallel if parallel else _encode4_vec_serial
            n_bad = kernel4(x, codes, s, o, _n_chunks(parallel, n))
        if n_bad:
            raise_not_finite("vectors", x)
        if np.isinf(s).any():
            raise ValueError(
                "vectors: expected a value range (max - min) of each vector that fits float32, "
                "got one that overflows; rescale the vectors first"
            )
        return Quantized(codes, s, o)
    if (scales is None) != (offsets is None):
        raise ValueError("scales: pass both scales and offsets (from an earlier call) or neither")
    if scales is None:
        s, o = _fit_dimension(x, levels, clip, parallel)
    else:
        if clip is not None:
            raise ValueError("clip: fixed scales/offsets were given, so there is nothing to fit; pass clip=None")
        s = _check_params("scales", scales, d, "one step per dimension")
        o = _check_params("offsets", offsets, d, "one minimum per dimension")
        if (s < 0).any():
            raise ValueError("scales: expected non-negative steps, got a negative one")
    s, inv = _inverse_steps(s)
    if levels == 255:
        kernel_dim = _encode_dim_parallel if parallel else _encode_dim_serial
        n_bad = kernel_dim(x, o, inv, levels, codes)
    else:
        kernel4_dim = _encode4_dim_parallel if parallel else _encode4_dim_serial
        n_bad = kernel4_dim(x, o, inv, codes, _n_chunks(parallel, n))
    if n_bad:
        raise_not_finite("vectors", x)
    return Quantized(codes, s, o)


# deliberate twin of quantize_int8 in quantize_int4: two public functions, each with its own
# signature in help() and its own docs; all their work is shared in _quantize above.
def quantize_int8(
    vectors: np.ndarray,
    per: str = "dimension",
    *,
    clip: float | None = None,
    scales: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> Quantized:
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
    """
    return _quantize(vectors, per, clip, scales, offsets, out, 255)


def quantize_int4(
    vectors: np.ndarray,
    per: str = "dimension",
    *,
    clip: float | None = None,
    scales: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> Quantized:
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
    """
    return _quantize(vectors, per, clip, scales, offsets, out, 15)
