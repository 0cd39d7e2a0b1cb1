"""Dense <-> CSR (compressed sparse row) conversion, with scipy interop when scipy is installed."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import prange

from memstrata.kernels._common import check_out, describe, serial_and_parallel, use_parallel

__all__ = ["CSR", "PARALLEL_MIN_ELEMENTS", "from_csr", "to_csr"]

#: Matrices with at least this many elements use the ``parallel=True`` kernels
#: when Numba has more than one thread.
PARALLEL_MIN_ELEMENTS = 1 << 21


class CSR(NamedTuple):
    """A CSR matrix as plain arrays (the layout of ``scipy.sparse.csr_matrix``).

    Row ``i`` holds values ``data[indptr[i]:indptr[i + 1]]`` at columns
    ``indices[indptr[i]:indptr[i + 1]]`` (ascending).
    """

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]


def _count_rows(dense, threshold, counts):  # pragma: no cover - compiled
    n, d = dense.shape
    for i in prange(n):
        c = 0
        for j in range(d):
            c += abs(dense[i, j]) > threshold
        counts[i + 1] = c


def _fill(dense, threshold, indptr, data, indices, n_chunks):  # pragma: no cover - compiled
    """Copy the kept entries of each row into ``data``/``indices`` at ``indptr``.

    Branch-free: every entry is written to a row-sized scratch buffer and the
    write position advances only for kept ones (a data-dependent branch at
    middling density mispredicts constantly); the kept prefix is then copied
    out, so no thread writes past its own rows.
    """
    n, d = dense.shape
    rows = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        vals = np.empty(d + 1, dense.dtype)
        cols = np.empty(d + 1, indices.dtype)
        for i in range(c * rows, min(n, (c + 1) * rows)):
            p = 0
            for j in range(d):
                v = dense[i, j]
                vals[p] = v
                cols[p] = j
                p += abs(v) > threshold
            start = indptr[i]
            for t in range(p):
                data[start + t] = vals[t]
                indices[start + t] = cols[t]


def _scatter(data, indices, indptr, out):  # pragma: no cover - compiled
    n = out.shape[0]
    for i in prange(n):
        row = out[i]
        row[:] = 0
        for p in range(indptr[i], indptr[i + 1]):
            row[indices[p]] += data[p]  # scipy sums duplicate entries too


_count_rows_serial, _count_rows_parallel = serial_and_parallel(_count_rows)
_fill_serial, _fill_parallel = serial_and_parallel(_fill)
_scatter_serial, _scatter_parallel = serial_and_parallel(_scatter)


def to_csr(dense: np.ndarray, threshold: float = 0.0, *, scipy: bool = False) -> Any:
    """Keep the entries of a dense matrix with ``|value| > threshold``, in CSR form.

    Parameters
    ----------
    dense : ndarray float32 or float64 (n, d)
        Non-contiguous input is copied. NaN entries are dropped (a comparison
        with NaN is false).
    threshold : float
        Non-negative; ``0.0`` keeps every non-zero.
    scipy : bool
        Return a ``scipy.sparse.csr_matrix`` (needs scipy) instead of :class:`CSR`.

    Returns
    -------
    CSR or scipy.sparse.csr_matrix
        ``data`` in the input dtype; ``indices``/``indptr`` int32 (int64 when
        the count of kept entries or ``d`` needs it). O(n·d), two passes.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.kernels import to_csr, from_csr
    >>> m = to_csr(np.array([[0.0, 2.0, 0.0], [1.0, 0.0, -3.0]], np.float32))
    >>> m.data, m.indices, m.indptr
    (array([ 2.,  1., -3.], dtype=float32), array([1, 0, 2], dtype=int32), array([0, 1, 3], dtype=int32))
    >>> from_csr(m)
    array([[ 0.,  2.,  0.],
           [ 1.,  0., -3.]], dtype=float32)
    """
    if not isinstance(dense, np.ndarray) or dense.dtype not in (np.float32, np.float64):
        raise TypeError(f"dense: expected float32 or float64 array of shape (n, d), got {describe(dense)}")
    if dense.ndim != 2:
        raise ValueError(f"dense: expected float32 or float64 array of shape (n, d), got {describe(dense)}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or not threshold >= 0:
        raise ValueError(f"threshold: expected a finite number >= 0, got {threshold!r}")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold: expected a finite number >= 0, got {threshold!r}")
    x = np.ascontiguousarray(dense)
    n, d = x.shape
    thr = x.dtype.type(threshold)
    parallel = use_parallel(n * d, PARALLEL_MIN_ELEMENTS)
    counts = np.zeros(n + 1, np.int64)
    (_count_rows_parallel if parallel else _count_rows_serial)(x, thr, counts)
    indptr = np.cumsum(counts)
    nnz = int(indptr[-1])
    index_dtype = np.int32 if max(nnz, d) < 2**31 else np.int64
    indptr = indptr.astype(index_dtype)
    data = np.empty(nnz, x.dtype)
    indices = np.empty(nnz, index_dtype)
    n_chunks = 1
    if parallel:
        import numba

        n_chunks = max(1, min(n, 4 * numba.get_num_threads()))
    (_fill_parallel if parallel else _fill_serial)(x, thr, indptr, data, indices, n_chunks)
    if scipy:
        try:
            import scipy.sparse as sparse
        except ImportError as exc:  # pragma: no cover - scipy is in the test extra
            raise ImportError("to_csr(scipy=True) needs scipy: pip install scipy") from exc
        return sparse.csr_matrix((data, indices, indptr), shape=(n, d))
    return CSR(data, indices, indptr, (n, d))


def from_csr(matrix: Any, *, out: np.ndarray | None = None) -> np.ndarray:
    """A dense float array from a :class:`CSR` or any ``scipy.sparse`` matrix.

    Parameters
    ----------
    matrix : CSR or scipy.sparse matrix
        float32 or float64 data; indices are checked against the shape.
    out : ndarray (n, d) of the data dtype, optional

    Returns
    -------
    ndarray (n, d)
        Duplicate entries are summed (as scipy does).

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata.kernels import CSR, from_csr
    >>> from_csr(CSR(np.array([5.0]), np.array([1]), np.array([0, 0, 1]), (2, 2)))
    array([[0., 0.],
           [0., 5.]])
    """
    if isinstance(matrix, CSR):
        data, indices, indptr, shape = matrix
    elif hasattr(matrix, "tocsr") and hasattr(matrix, "shape"):
        m = matrix.tocsr()
        data, indices, indptr, shape = m.data, m.indices, m.indptr, m.shape
    else:
        raise TypeError(f"matrix: expected memstrata.kernels.CSR or a scipy.sparse matrix, got {describe(matrix)}")
    data = np.asarray(data)
    if data.dtype not in (np.float32, np.float64):
        raise TypeError(f"matrix: expected float32 or float64 data, got {describe(data)}")
    n, d = (int(s) for s in shape)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    if indptr.shape != (n + 1,) or indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != data.size:
        raise ValueError(f"matrix: expected indptr of shape ({n + 1},), non-decreasing from 0 to {data.size}")
    if indices.shape != data.shape or (indices.size and (indices.min() < 0 or indices.max() >= d)):
        raise ValueError(f"matrix: expected one column index in [0, {d}) per value")
    result = np.empty((n, d), data.dtype) if out is None else check_out("out", out, (n, d), data.dtype)
    parallel = use_parallel(n * d, PARALLEL_MIN_ELEMENTS)
    (_scatter_parallel if parallel else _scatter_serial)(np.ascontiguousarray(data), indices, indptr, result)
    return result
