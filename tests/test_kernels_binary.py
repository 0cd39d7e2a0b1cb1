"""Binarization against ``np.packbits``."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from memstrata.kernels import binarize
from memstrata.kernels import binary as bmod

F32 = np.float32
values = st.floats(float(F32(-1e30)), float(F32(1e30)), width=32, allow_subnormal=True)


@st.composite
def matrices_and_centers(draw):
    n = draw(st.integers(0, 20))
    d = draw(st.integers(1, 70))
    x = draw(hnp.arrays(F32, (n, d), elements=values | st.sampled_from([0.0, -0.0, 1.0])))
    center = draw(st.none() | hnp.arrays(F32, (d,), elements=values | st.just(0.0)))
    return x, center


@given(matrices_and_centers())
def test_bits_identical_to_packbits(case):
    x, center = case
    got = binarize(x, center)
    np.testing.assert_array_equal(got, ref.binarize_ref(x, center))
    assert got.shape == (x.shape[0], (x.shape[1] + 7) // 8) and got.dtype == np.uint8


def test_zero_and_negative_zero_are_not_set():
    np.testing.assert_array_equal(binarize(np.array([[0.0, -0.0, 1e-45, -1e-45]], F32)), [[0b00100000]])


def test_float64_noncontiguous_and_out():
    x = np.random.default_rng(0).standard_normal((30, 80))
    expected = np.packbits(x.astype(F32) > 0, axis=1)
    np.testing.assert_array_equal(binarize(x), expected)
    np.testing.assert_array_equal(binarize(np.asfortranarray(x)), expected)
    out = np.empty((30, 10), np.uint8)
    assert binarize(x, out=out) is out
    np.testing.assert_array_equal(binarize(x[:, ::2]), np.packbits(x[:, ::2].astype(F32) > 0, axis=1))


def test_bad_input_messages():
    with pytest.raises(TypeError, match="vectors: expected float32 or float64 array .* got int32"):
        binarize(np.ones((2, 3), np.int32))
    with pytest.raises(ValueError, match="vectors: expected finite values, got NaN or inf in 1 row"):
        binarize(np.array([[1.0, np.nan]], F32))
    with pytest.raises(ValueError, match=r"center: expected float32 array of shape \(3,\), got float32 with shape \(2,\)"):
        binarize(np.ones((2, 3), F32), np.zeros(2, F32))
    with pytest.raises(TypeError, match="center: expected float32 array"):
        binarize(np.ones((2, 3), F32), [0, 0, 0])
    with pytest.raises(ValueError, match="center: expected finite values"):
        binarize(np.ones((2, 3), F32), np.array([0, np.inf, 0], F32))
    with pytest.raises(ValueError, match=r"out: expected uint8 array of shape \(2, 1\)"):
        binarize(np.ones((2, 3), F32), out=np.empty((2, 2), np.uint8))


def test_parallel_twin_matches_serial():
    x = np.random.default_rng(1).standard_normal((101, 45)).astype(F32)
    out = np.empty((101, 6), np.uint8)
    assert bmod._binarize_parallel(x, np.zeros(45, F32), out, 8) == 0
    np.testing.assert_array_equal(out, np.packbits(x > 0, axis=1))
