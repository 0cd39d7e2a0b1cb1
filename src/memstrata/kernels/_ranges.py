"""Fitting the quantization grid: each dimension's or each vector's range, and its step.

Per dimension, the range is the column's min and max (a parallel reduction), or
its ``1 - clip`` and ``clip`` quantiles; per vector, each row's min and max,
fitted inside the encoders' loops (:func:`_fit_row`). A range of ``levels``
steps gives ``scale = (hi - lo) / levels``; :func:`_inverse_steps` turns the
scales into the multipliers the encoders use. Used by :mod:`memstrata.kernels.quantize`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from memstrata.kernels._common import raise_not_finite, serial_and_parallel

# A step below the smallest normal float32 would make 1/step overflow; such a
# column (range below ~3e-36) is stored as constant.
_MIN_STEP = np.float32(np.finfo(np.float32).tiny)


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


_minmax_columns_serial, _minmax_columns_parallel = serial_and_parallel(_minmax_columns)


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


# ------------------------------------------- called from Python by the quantize wrappers


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
