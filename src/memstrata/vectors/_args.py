"""Argument checks shared by the vector memory's modules."""

from __future__ import annotations

from typing import Any

import numpy as np


def describe(value: Any) -> str:
    """What arrived, for error messages: dtype and shape of an array, else the type name."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} with shape {value.shape}"
    return type(value).__name__


def as_ids(name: str, ids: Any) -> np.ndarray:
    """``ids`` (an int, or an iterable / array of ints) as a 1-D int64 array."""
    arr = np.atleast_1d(np.asarray(list(ids) if not isinstance(ids, (np.ndarray, int, np.integer)) else ids))
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got {describe(arr)}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of integers, got {describe(arr)}")
    return arr.astype(np.int64)


def unique_sorted(arr: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-D integer array (``np.unique`` without its first-call import cost)."""
    s = np.sort(arr)
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if s.size else s
