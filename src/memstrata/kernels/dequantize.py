"""Decoding int8 and int4 codes from :mod:`memstrata.kernels.quantize` back to float32 vectors.

A code decodes to ``code_unsigned * scale + offset`` (int8 codes are stored
minus 128, so the kernels fold ``128 * scale`` into the offset once); the
arithmetic is float32 in a fixed order, as in ``tests/reference.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from memstrata.kernels._common import check_float_vector, check_out, describe, serial_and_parallel, use_parallel
from memstrata.kernels.quantize import PARALLEL_MIN_ELEMENTS, _check_per

__all__ = ["dequantize_int4", "dequantize_int8"]


# --------------------------------------------------------------------- kernels


def _decode_dim(codes, scale, bias, out):  # pragma: no cover - compiled
    n, d = codes.shape
    for i in prange(n):
        for j in range(d):
            out[i, j] = np.float32(codes[i, j]) * scale[j] + bias[j]


def _decode_vec(codes, scale, bias, out):  # pragma: no cover - compiled
    n, d = codes.shape
    for i in prange(n):
        s = scale[i]
        b = bias[i]
        for j in range(d):
            out[i, j] = np.float32(codes[i, j]) * s + b


def _decode4_dim(packed, scale, offset, out):  # pragma: no cover - compiled
    n, d = out.shape
    half = d // 2
    for i in prange(n):
        for m in range(half):
            b = packed[i, m]
            out[i, 2 * m] = np.float32(b & 15) * scale[2 * m] + offset[2 * m]
            out[i, 2 * m + 1] = np.float32(b >> 4) * scale[2 * m + 1] + offset[2 * m + 1]
        if d & 1:
            out[i, d - 1] = np.float32(packed[i, half] & 15) * scale[d - 1] + offset[d - 1]


def _decode4_vec(packed, scale, offset, out):  # pragma: no cover - compiled
    n, d = out.shape
    half = d // 2
    for i in prange(n):
        s = scale[i]
        o = offset[i]
        for m in range(half):
            b = packed[i, m]
            out[i, 2 * m] = np.float32(b & 15) * s + o
            out[i, 2 * m + 1] = np.float32(b >> 4) * s + o
        if d & 1:
            out[i, d - 1] = np.float32(packed[i, half] & 15) * s + o


_decode_dim_serial, _decode_dim_parallel = serial_and_parallel(_decode_dim)
_decode_vec_serial, _decode_vec_parallel = serial_and_parallel(_decode_vec)
_decode4_dim_serial, _decode4_dim_parallel = serial_and_parallel(_decode4_dim)
_decode4_vec_serial, _decode4_vec_parallel = serial_and_parallel(_decode4_vec)


# -------------------------------------------------------------------- wrappers


def _check_codes(codes: Any, dtype: Any, what: str) -> np.ndarray:
    dtype = np.dtype(dtype)
    if not isinstance(codes, np.ndarray) or codes.dtype != dtype:
        raise TypeError(f"codes: expected {dtype} array of shape (n, {what}), got {describe(codes)}")
    if codes.ndim != 2:
        raise ValueError(f"codes: expected {dtype} array of shape (n, {what}), got {describe(codes)}")
    return np.ascontiguousarray(codes)


def _dequantize_args(
    codes: np.ndarray, scales: Any, offsets: Any, per: str, d: int, levels: int
) -> tuple[np.ndarray, np.ndarray]:
    n = codes.shape[0]
    length = d if per == "dimension" else n
    what = "one per dimension" if per == "dimension" else "one per vector"
    s = check_float_vector("scales", scales, length, what)
    o = check_float_vector("offsets", offsets, length, what)
    if levels == 255:
        # int8 codes are stored minus 128: x = (c + 128) * s + o = c * s + (o + 128 s)
        o = (o + np.float32(128.0) * s).astype(np.float32)
    return s, o


def _decode(twins: tuple[Any, Any], codes: np.ndarray, s: np.ndarray, o: np.ndarray, d: int, out: Any) -> np.ndarray:
    """Decode into ``out`` (checked) or a new float32 (n, d) array with the (serial, parallel) kernel pair:
    the parallel one from PARALLEL_MIN_ELEMENTS values."""
    n = codes.shape[0]
    result = np.empty((n, d), np.float32) if out is None else check_out("out", out, (n, d), np.float32)
    serial, parallel = twins
    (parallel if use_parallel(n * d, PARALLEL_MIN_ELEMENTS) else serial)(codes, s, o, result)
    return result


def dequantize_int8(
    codes: np.ndarray,
    scales: np.ndarray,
    offsets: np.ndarray,
    per: str = "dimension",
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Decode int8 codes from :func:`quantize_int8` to float32 vectors.

    Parameters
    ----------
    codes : ndarray int8 (n, d)
    scales, offsets : ndarray float32, shape (d,) for ``per="dimension"``, (n,) for ``per="vector"``
    per : {"dimension", "vector"}
        As given to :func:`quantize_int8`.
    out : ndarray float32 (n, d), optional
        Buffer for the result.

    Returns
    -------
    ndarray float32 (n, d)
        ``(code + 128) * scale + offset``, within half a step of the original.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.kernels import dequantize_int8
    >>> codes = np.array([[-128, 127]], dtype=np.int8)
    >>> dequantize_int8(codes, np.array([0.5, 0.5], np.float32), np.zeros(2, np.float32))
    array([[  0. , 127.5]], dtype=float32)
    """
    per = _check_per(per)
    codes = _check_codes(codes, np.int8, "d")
    d = codes.shape[1]
    s, bias = _dequantize_args(codes, scales, offsets, per, d, 255)
    twins = (_decode_dim_serial, _decode_dim_parallel) if per == "dimension" else (_decode_vec_serial, _decode_vec_parallel)
    return _decode(twins, codes, s, bias, d, out)


def dequantize_int4(
    codes: np.ndarray,
    scales: np.ndarray,
    offsets: np.ndarray,
    per: str = "dimension",
    *,
    dim: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Decode packed 4-bit codes from :func:`quantize_int4` to float32 vectors.

    Parameters
    ----------
    codes : ndarray uint8 (n, (d + 1) // 2)
    scales, offsets : ndarray float32, shape (d,) for ``per="dimension"``, (n,) for ``per="vector"``
    per : {"dimension", "vector"}
    dim : int, optional
        The number of dimensions ``d``. With ``per="dimension"`` it is
        ``len(scales)``; with ``per="vector"`` it defaults to
        ``2 * codes.shape[1]``, so pass it when ``d`` is odd.
    out : ndarray float32 (n, d), optional

    Returns
    -------
    ndarray float32 (n, d)

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.kernels import dequantize_int4
    >>> codes = np.array([[0x1F]], dtype=np.uint8)  # low nibble 15, high nibble 1
    >>> dequantize_int4(codes, np.ones(1, np.float32), np.zeros(1, np.float32), "vector", dim=2)
    array([[15.,  1.]], dtype=float32)
    """
    per = _check_per(per)
    codes = _check_codes(codes, np.uint8, "(d + 1) // 2")
    width = codes.shape[1]
    if per == "dimension":
        if not isinstance(scales, np.ndarray) or scales.ndim != 1:
            raise TypeError(f"scales: expected float32 array of shape (d,), got {describe(scales)}")
        d = scales.shape[0]
        if dim is not None and dim != d:
            raise ValueError(f"dim: expected {d} (the length of scales) or None, got {dim!r}")
    else:
        d = 2 * width if dim is None else dim
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or (d + 1) // 2 != width or d < 1:
        raise ValueError(
            f"codes: expected uint8 array of shape (n, {(int(d) + 1) // 2 if isinstance(d, (int, np.integer)) else '?'}) "
            f"for d={d!r}, got {describe(codes)}"
        )
    d = int(d)
    s, o = _dequantize_args(codes, scales, offsets, per, d, 15)
    twins = (_decode4_dim_serial, _decode4_dim_parallel) if per == "dimension" else (_decode4_vec_serial, _decode4_vec_parallel)
    return _decode(twins, codes, s, o, d, out)
