"""Array codecs: ``csr`` (lossless, sparse) and ``int8`` / ``int4`` / ``binary`` (lossy).

The lossy codecs take float32/float64 vectors of shape ``(n, d)`` (or ``(d,)``)
with finite values and decode to the same dtype and shape. Their error is
bounded and stated per codec; the frame's content digest is the digest of the
original (pre-loss) array bytes, so it still names the content that was stored.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from memstrata.codecs._frame import KIND_OBJECT, FrameHeader
from memstrata.codecs._hash import digest
from memstrata.codecs._registry import Codec, register_codec
from memstrata.errors import CorruptDataError

__all__ = ["BinaryCodec", "CSRCodec", "Int4Codec", "Int8Codec"]


def _vectors(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(original array, 2-D C-contiguous view)`` of float vectors, validated."""
    if not isinstance(data, np.ndarray):
        raise TypeError(f"data: expected a float32 or float64 array of shape (n, d), got {type(data).__name__}")
    if data.dtype not in (np.float32, np.float64):
        raise TypeError(f"data: expected a float32 or float64 array of shape (n, d), got {data.dtype}")
    if data.ndim not in (1, 2):
        raise ValueError(f"data: expected shape (n, d) or (d,), got {data.shape}")
    x = np.ascontiguousarray(data)
    return x, x.reshape(1, -1) if x.ndim == 1 else x


def _parts(payload: memoryview, sizes: list[int]) -> list[memoryview]:
    if sum(sizes) != len(payload):
        raise CorruptDataError("frame: array payload has the wrong size")
    out, pos = [], 0
    for s in sizes:
        out.append(payload[pos : pos + s])
        pos += s
    return out


class _LossyVectorCodec(Codec):
    lossless = False

    def encode(self, data: Any) -> bytes:
        x, x2 = _vectors(data)
        payload, meta = self._encode_vectors(x2)
        meta = {"dtype": x.dtype.str, "shape": list(x.shape), **meta}
        return self._frame(payload, KIND_OBJECT, meta, content_digest=digest(x.data), original_length=x.nbytes)

    def _encode(self, buf: Any, meta: dict[str, Any]) -> tuple[bytes, None, None]:
        return buf, None, None  # ``buf`` is already the encoded payload

    @abstractmethod
    def _encode_vectors(self, x: np.ndarray) -> tuple[bytes, dict[str, Any]]:
        """Encode a C-contiguous float32 ``(n, d)`` matrix; return payload and frame metadata."""

    @classmethod
    def _decode(cls, payload: memoryview, header: FrameHeader, dictionary: Any) -> Any:
        meta = header.meta
        shape = tuple(meta["shape"])
        d = shape[-1] if shape else 0
        n = 1 if len(shape) == 1 else shape[0]
        out = cls._decode_vectors(payload, n, d, meta)
        return out.astype(np.dtype(meta["dtype"]), copy=False).reshape(shape)

    @classmethod
    @abstractmethod
    def _decode_vectors(cls, payload: memoryview, n: int, d: int, meta: dict[str, Any]) -> np.ndarray:
        """Decode a payload into a float32 ``(n, d)`` matrix."""


_PER = ("dimension", "vector")


@register_codec
class Int8Codec(_LossyVectorCodec):
    """Lossy: 8-bit scalar quantization (4x smaller than float32).

    Error bound: every decoded value is within half a quantization step
    (``scale / 2``; the range of the dimension, or of the vector, over 255) of the
    original.

    Parameters
    ----------
    per : {"dimension", "vector"}
        One range per dimension (fitted on the array being encoded) or per vector.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.codecs import get_codec, decode
    >>> x = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    >>> y = decode(get_codec("int8").encode(x))
    >>> y.dtype, y.shape, bool(np.abs(y - x).max() < (x.max(0) - x.min(0)).max() / 255)
    (dtype('float32'), (100, 8), True)
    """

    codec_id = "int8"
    frame_id = 7
    _bits = 8  # Int4Codec: 4 (the same codec but for the kernels and the code width)

    def __init__(self, per: str = "dimension") -> None:
        if per not in _PER:
            raise ValueError(f"per: expected 'dimension' or 'vector', got {per!r}")
        self.per = per

    def _params(self) -> dict[str, Any]:
        return {"per": self.per}

    def _encode_vectors(self, x: np.ndarray) -> tuple[bytes, dict[str, Any]]:
        from memstrata import kernels

        if x.shape[0] == 0 or x.shape[1] == 0:
            return b"", {"per": self.per}
        quantize = kernels.quantize_int8 if self._bits == 8 else kernels.quantize_int4
        q = quantize(x, per=self.per)
        return q.codes.tobytes() + q.scales.tobytes() + q.offsets.tobytes(), {"per": self.per}

    @classmethod
    def _decode_vectors(cls, payload: memoryview, n: int, d: int, meta: dict[str, Any]) -> np.ndarray:
        from memstrata import kernels

        if n == 0 or d == 0:
            return np.empty((n, d), np.float32)
        per = meta["per"]
        k = d if per == "dimension" else n
        w = d if cls._bits == 8 else (d + 1) // 2  # int4: two codes a byte
        codes, scales, offsets = _parts(payload, [n * w, 4 * k, 4 * k])
        s, o = np.frombuffer(scales, np.float32), np.frombuffer(offsets, np.float32)
        if cls._bits == 8:
            return kernels.dequantize_int8(np.frombuffer(codes, np.int8).reshape(n, d), s, o, per)
        return kernels.dequantize_int4(np.frombuffer(codes, np.uint8).reshape(n, w), s, o, per, dim=d)


@register_codec
class Int4Codec(Int8Codec):
    """Lossy: 4-bit scalar quantization, two values per byte (8x smaller than float32).

    Error bound: within half a step (``scale / 2``; the range over 15) of the original.
    """

    codec_id = "int4"
    frame_id = 8
    _bits = 4


@register_codec
class BinaryCodec(_LossyVectorCodec):
    """Lossy: one sign bit per value (32x smaller than float32), plus one scale per vector.

    A value decodes to ``center + s * m`` where ``s`` is +1 if it was above the
    center and -1 otherwise, and ``m`` is the vector's mean absolute deviation from
    the center. Error bound: the side of the center of every value is kept
    (``decoded > center`` exactly where ``original > center``).

    Parameters
    ----------
    center : {"zero", "mean"}
        Threshold per dimension: zero, or the mean over the vectors being encoded
        (stored in the frame).
    """

    codec_id = "binary"
    frame_id = 9

    def __init__(self, center: str = "zero") -> None:
        if center not in ("zero", "mean"):
            raise ValueError(f"center: expected 'zero' or 'mean', got {center!r}")
        self.center = center

    def _params(self) -> dict[str, Any]:
        return {"center": self.center}

    def _encode_vectors(self, x: np.ndarray) -> tuple[bytes, dict[str, Any]]:
        from memstrata.kernels import binarize

        n, d = x.shape
        if n == 0 or d == 0:
            return b"", {"center": self.center}
        if self.center == "mean":
            c = x.mean(axis=0, dtype=np.float64).astype(np.float32)
            if not np.isfinite(c).all():
                raise ValueError("data: the mean of the vectors overflows float32")
        else:
            c = np.zeros(d, np.float32)
        bits = binarize(x, c if self.center == "mean" else None)
        mag = np.abs(x.astype(np.float64) - c).mean(axis=1).astype(np.float32)
        parts = [bits.tobytes(), mag.tobytes()]
        if self.center == "mean":
            parts.append(c.tobytes())
        return b"".join(parts), {"center": self.center}

    @classmethod
    def _decode_vectors(cls, payload: memoryview, n: int, d: int, meta: dict[str, Any]) -> np.ndarray:
        if n == 0 or d == 0:
            return np.empty((n, d), np.float32)
        w = (d + 7) // 8
        has_center = meta["center"] == "mean"
        parts = _parts(payload, [n * w, 4 * n] + ([4 * d] if has_center else []))
        bits = np.unpackbits(np.frombuffer(parts[0], np.uint8).reshape(n, w), axis=1, count=d)
        mag = np.frombuffer(parts[1], np.float32)
        sign = bits.astype(np.float32) * 2.0 - 1.0
        out = sign * mag[:, None]
        if has_center:
            c = np.frombuffer(parts[2], np.float32)
            # a zero magnitude would put a value on the center; keep it strictly on its side
            out = np.where(bits.astype(bool), np.maximum(out + c, np.nextafter(c, np.float32(np.inf))),
                           np.minimum(out + c, c))
        else:
            out = np.where(bits.astype(bool), np.maximum(out, np.float32(np.finfo(np.float32).smallest_subnormal)),
                           np.minimum(out, np.float32(0.0)))
        return out.astype(np.float32)


def _is_scipy_csr(data: Any) -> bool:
    return getattr(data, "format", None) == "csr" and hasattr(data, "indptr") and hasattr(data, "indices")


@register_codec
class CSRCodec(Codec):
    """Lossless: sparse 2-D arrays as CSR (row pointers, column indices, values).

    Takes a dense 2-D numpy array (decoded as the same dense array, every bit
    kept, including ``-0.0`` and NaN) or a SciPy CSR matrix/array (decoded as a
    SciPy ``csr_array``). The CSR buffers are then compressed with zstd at
    ``level`` (0: stored as is).

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.codecs import get_codec, decode
    >>> x = np.zeros((1000, 1000), np.float32); x[::97, ::13] = 1.5
    >>> frame = get_codec("csr").encode(x)
    >>> bool((decode(frame) == x).all()), len(frame) < 2000
    (True, True)
    """

    codec_id = "csr"
    frame_id = 5

    def __init__(self, level: int = 3) -> None:
        if type(level) is not int or not 0 <= level <= 22:
            raise ValueError(f"level: expected an int in [0, 22], got {level!r}")
        self.level = level

    def _params(self) -> dict[str, Any]:
        return {"level": self.level}

    def encode(self, data: Any) -> bytes:
        if _is_scipy_csr(data):
            shape = tuple(int(s) for s in data.shape)
            values = np.ascontiguousarray(data.data)
            indices = np.ascontiguousarray(data.indices)
            indptr = np.ascontiguousarray(data.indptr)
            scipy_out = True
        elif isinstance(data, np.ndarray):
            if data.ndim != 2:
                raise ValueError(f"data: expected a 2-D array, got shape {data.shape}")
            if data.dtype.hasobject or data.dtype.names is not None:
                raise TypeError(f"data: arrays of dtype {data.dtype} are not supported")
            dense = np.ascontiguousarray(data)
            shape = dense.shape
            # nonzero by bit pattern, so -0.0 and NaN payloads survive exactly
            width = dense.dtype.itemsize
            bits: np.ndarray
            if width in (1, 2, 4, 8) and dense.dtype.kind != "V":
                bits = dense.view(f"u{width}")
            else:
                bits = np.asarray(dense.view(np.uint8).reshape(shape[0], shape[1], width).any(axis=2))
            rows, cols = np.nonzero(bits)
            values = dense[rows, cols]
            indices = cols
            indptr = np.zeros(shape[0] + 1, np.int64)
            np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
            scipy_out = False
        else:
            raise TypeError(f"data: expected a 2-D numpy array or a SciPy CSR matrix, got {type(data).__name__}")
        idx_dtype = np.int32 if shape[1] < 2**31 else np.int64
        values = np.ascontiguousarray(values)
        parts = [
            np.asarray(indptr, np.int64).tobytes(),
            np.asarray(indices, idx_dtype).tobytes(),
            values.tobytes(),
        ]
        raw = b"".join(parts)
        meta = {
            "dtype": values.dtype.str,
            "shape": list(shape),
            "nnz": len(values),
            "index": np.dtype(idx_dtype).str,
            "scipy": scipy_out,
            "level": self.level,
        }
        if scipy_out:
            content, original_length = digest(raw + str(shape).encode()), len(raw)
        else:
            content, original_length = digest(dense.data), dense.nbytes
        return self._frame(raw, KIND_OBJECT, meta, content_digest=content, original_length=original_length)

    def _encode(self, buf: Any, meta: dict[str, Any]) -> tuple[bytes, None, None]:
        if self.level == 0:
            return buf, None, None
        import zstandard

        return zstandard.ZstdCompressor(level=self.level).compress(buf), None, None

    @classmethod
    def _decode(cls, payload: memoryview, header: FrameHeader, dictionary: Any) -> Any:
        meta = header.meta
        n_rows, n_cols = (int(s) for s in meta["shape"])
        nnz = int(meta["nnz"])
        dtype = np.dtype(meta["dtype"])
        idx_dtype = np.dtype(meta["index"])
        if dtype.hasobject or idx_dtype.kind != "i":
            raise CorruptDataError("frame: bad csr dtypes")
        if meta["level"]:
            import zstandard

            raw = zstandard.ZstdDecompressor().decompress(payload)
        else:
            raw = bytes(payload)
        sizes = [8 * (n_rows + 1), idx_dtype.itemsize * nnz, dtype.itemsize * nnz]
        p_indptr, p_indices, p_values = _parts(memoryview(raw), sizes)
        indptr = np.frombuffer(p_indptr, np.int64)
        indices = np.frombuffer(p_indices, idx_dtype)
        values = np.frombuffer(p_values, dtype)
        if indptr[0] != 0 or indptr[-1] != nnz or (np.diff(indptr) < 0).any() or (nnz and (indices.min() < 0 or indices.max() >= n_cols)):
            raise CorruptDataError("frame: inconsistent csr structure")
        if meta["scipy"]:
            import scipy.sparse

            return scipy.sparse.csr_array((values.copy(), indices.copy(), indptr.copy()), shape=(n_rows, n_cols))
        out = np.zeros((n_rows, n_cols), dtype)
        rows = np.repeat(np.arange(n_rows), np.diff(indptr))
        out[rows, indices] = values
        return out
