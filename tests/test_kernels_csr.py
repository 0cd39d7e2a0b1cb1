"""Dense <-> CSR against numpy and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from memstrata.kernels import CSR, from_csr, to_csr


@st.composite
def sparse_dense(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n, d = draw(st.integers(0, 20)), draw(st.integers(0, 30))
    elements = st.sampled_from([0.0, 0.0, 0.0, -0.0, 1.5, -2.0, 1e-40, 3e30]) | st.floats(-1, 1, width=32)
    x = draw(hnp.arrays(dtype, (n, d), elements=elements))
    threshold = draw(st.sampled_from([0.0, 0.5, 1.0]))
    return x, threshold


@given(sparse_dense())
def test_round_trip_and_reference(case):
    x, threshold = case
    m = to_csr(x, threshold)
    data, indices, indptr = ref.to_csr_ref(x, threshold)
    np.testing.assert_array_equal(m.data, data)
    np.testing.assert_array_equal(m.indices, indices)
    np.testing.assert_array_equal(m.indptr, indptr)
    assert m.data.dtype == x.dtype and m.shape == x.shape
    kept = np.where(np.abs(x) > threshold, x, 0)
    np.testing.assert_array_equal(from_csr(m), kept)


def test_scipy_interop():
    sparse = pytest.importorskip("scipy.sparse", reason="scipy is optional; the interop needs it")
    x = np.random.default_rng(0).standard_normal((40, 30)).astype(np.float32)
    x[np.abs(x) < 1] = 0
    m = to_csr(x, scipy=True)
    assert isinstance(m, sparse.csr_matrix)
    np.testing.assert_array_equal(m.toarray(), x)
    np.testing.assert_array_equal(from_csr(sparse.csr_matrix(x)), x)
    np.testing.assert_array_equal(from_csr(sparse.coo_matrix(x)), x)
    ours = to_csr(x)
    theirs = sparse.csr_matrix(x)
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)


def test_non_contiguous_and_nan():
    x = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2]
    np.testing.assert_array_equal(from_csr(to_csr(x)), x)
    y = np.array([[np.nan, 1.0]])
    np.testing.assert_array_equal(to_csr(y).indices, [1])  # NaN is not > threshold: dropped


def test_bad_input_messages():
    with pytest.raises(TypeError, match="dense: expected float32 or float64 array of shape .n, d., got int64"):
        to_csr(np.ones((2, 2), np.int64))
    with pytest.raises(ValueError, match="dense: expected .* got float32 with shape .3,."):
        to_csr(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="threshold: expected a finite number >= 0, got -1"):
        to_csr(np.ones((2, 2)), -1)
    with pytest.raises(TypeError, match="matrix: expected memstrata.kernels.CSR or a scipy.sparse matrix"):
        from_csr(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"matrix: expected one column index in \[0, 2\)"):
        from_csr(CSR(np.ones(1), np.array([2]), np.array([0, 1]), (1, 2)))
    with pytest.raises(ValueError, match="matrix: expected indptr"):
        from_csr(CSR(np.ones(1), np.array([0]), np.array([0, 2]), (1, 2)))
