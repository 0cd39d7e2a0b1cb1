"""Classify a batch of keys for the compiled hashing and Bloom filter loops."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

KIND_DIGESTS = 0  # (n, 16) uint8, C-contiguous: rows are content digests
KIND_UINT64 = 1  # (n,) uint64, C-contiguous: integer keys
KIND_OBJECTS = 2  # list of str / bytes-like / int keys

_EXPECTED = "a uint64 array, an (n, 16) uint8 digest array, or a sequence of str/bytes/int keys"


def classify_keys(keys: Any, argname: str = "keys") -> tuple[int, Any]:
    """Return ``(kind, data)`` for a batch of keys; never copies a fitting array."""
    if isinstance(keys, np.ndarray):
        return _classify_array(keys, argname)
    if isinstance(keys, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            f"{argname}: expected {_EXPECTED}, got a single {type(keys).__name__}; "
            f"wrap one key in a list"
        )
    if isinstance(keys, list):
        return KIND_OBJECTS, keys
    if isinstance(keys, Iterable):
        return KIND_OBJECTS, list(keys)
    raise TypeError(f"{argname}: expected {_EXPECTED}, got {type(keys).__name__}")


def classify_with_result(
    keys: Any, dtype: Any, *, zeroed: bool, argname: str = "keys"
) -> tuple[int, Any, np.ndarray]:
    """Return ``(kind, data, out)``: :func:`classify_keys` and ``out``, one entry of ``dtype`` a key.

    The batch entry points of the hashing and Bloom loops start alike: classify, then
    allocate the result they fill (and hand it back as it is when the batch is empty).
    ``zeroed``: ``out`` starts all zero (for a loop that writes only some entries);
    otherwise it is left uninitialised, which is measurably faster for a loop that
    writes every entry.
    """
    kind, data = classify_keys(keys, argname)
    return kind, data, (np.zeros if zeroed else np.empty)(len(data), dtype=dtype)


def _classify_array(keys: np.ndarray, argname: str) -> tuple[int, Any]:
    kind = keys.dtype.kind
    if kind == "u" and keys.dtype.itemsize == 1 and keys.ndim == 2 and keys.shape[1] == 16:
        return KIND_DIGESTS, np.ascontiguousarray(keys)
    if kind in "iu" and keys.ndim == 1:
        if kind == "i" and keys.size and int(keys.min()) < 0:
            raise ValueError(
                f"{argname}: integer key arrays must be non-negative, got a minimum of "
                f"{int(keys.min())}; pass negative keys as a list of Python ints"
            )
        return KIND_UINT64, np.ascontiguousarray(keys, dtype=np.uint64)
    if kind in "OUS" and keys.ndim == 1:
        return KIND_OBJECTS, keys.tolist()
    raise TypeError(f"{argname}: expected {_EXPECTED}, got {keys.dtype} array of shape {keys.shape}")
