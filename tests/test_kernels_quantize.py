"""int8 / int4 quantization kernels against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from memstrata.kernels import _ranges as ranges
from memstrata.kernels import dequantize as dmod
from memstrata.kernels import dequantize_int4, dequantize_int8, quantize_int4, quantize_int8
from memstrata.kernels import quantize as qmod

F32 = np.float32
# finite float32 values whose ranges (max - min) still fit float32, subnormals included
values = st.floats(float(F32(-1e30)), float(F32(1e30)), width=32, allow_subnormal=True)


@st.composite
def matrices(draw, min_rows=0, max_rows=24, max_dim=40):
    """float32 (n, d) matrices, sometimes with constant columns, small-integer grids, or huge values."""
    n = draw(st.integers(min_rows, max_rows))
    d = draw(st.integers(1, max_dim))
    kind = draw(st.sampled_from(["any", "grid", "unit"]))
    if kind == "any":
        x = draw(hnp.arrays(F32, (n, d), elements=values))
    elif kind == "grid":  # many exact ties and exactly representable steps
        x = draw(hnp.arrays(F32, (n, d), elements=st.integers(-4, 4).map(F32)))
    else:
        x = draw(hnp.arrays(F32, (n, d), elements=st.floats(-1, 1, width=32)))
    if n and draw(st.booleans()):
        col = draw(st.integers(0, d - 1))
        x[:, col] = x[0, col]  # a constant column
    return x


def _within_half_step(x, decoded, scales, offsets, per, levels):
    """|decoded - x| <= scale / 2, plus float32 rounding of the arithmetic (relative to the range ends)."""
    step = scales[None, :] if per == "dimension" else scales[:, None]
    lo = offsets[None, :] if per == "dimension" else offsets[:, None]
    magnitude = np.abs(x) + np.abs(decoded) + np.abs(lo) + step * levels
    slack = 8 * np.finfo(F32).eps * magnitude.astype(np.float64) + np.finfo(F32).tiny * 256
    return np.all(np.abs(decoded.astype(np.float64) - x) <= step.astype(np.float64) / 2 + slack)


@given(matrices(), st.sampled_from(["dimension", "vector"]))
def test_int8_codes_match_reference(x, per):
    q = quantize_int8(x, per)
    ref.assert_same_quantized(q, ref.quantize_int8_ref(x, per))
    decoded = dequantize_int8(q.codes, q.scales, q.offsets, per)
    np.testing.assert_array_equal(decoded, ref.dequantize_int8_ref(q.codes, q.scales, q.offsets, per))
    assert _within_half_step(x, decoded, q.scales, q.offsets, per, 255)


@given(matrices(), st.sampled_from(["dimension", "vector"]))
def test_int4_codes_match_reference(x, per):
    q = quantize_int4(x, per)
    ref.assert_same_quantized(q, ref.quantize_int4_ref(x, per))
    d = x.shape[1]
    decoded = dequantize_int4(q.codes, q.scales, q.offsets, per, dim=d)
    np.testing.assert_array_equal(decoded, ref.dequantize_int4_ref(q.codes, q.scales, q.offsets, d, per))
    assert decoded.shape == x.shape
    assert _within_half_step(x, decoded, q.scales, q.offsets, per, 15)
    if d % 2:
        assert not (q.codes[:, -1] >> 4).any()  # the unused high nibble is zero


@given(matrices(min_rows=1), matrices(min_rows=1))
def test_fixed_parameters_clamp_new_vectors(fit_on, other):
    d = min(fit_on.shape[1], other.shape[1])
    fit_on, other = np.ascontiguousarray(fit_on[:, :d]), np.ascontiguousarray(other[:, :d])
    q = quantize_int8(fit_on)
    again = quantize_int8(other, scales=q.scales, offsets=q.offsets)
    codes, _, _ = ref.quantize_int8_ref(other, "dimension", q.scales, q.offsets)
    np.testing.assert_array_equal(again.codes, codes)
    q4 = quantize_int4(fit_on)
    again4 = quantize_int4(other, scales=q4.scales, offsets=q4.offsets)
    np.testing.assert_array_equal(again4.codes, ref.quantize_int4_ref(other, "dimension", q4.scales, q4.offsets)[0])


def test_out_buffers_are_used():
    x = np.random.default_rng(1).standard_normal((50, 33)).astype(F32)
    out = np.empty((50, 33), np.int8)
    q = quantize_int8(x, out=out)
    assert q.codes is out
    out4 = np.empty((50, 17), np.uint8)
    assert quantize_int4(x, out=out4).codes is out4
    dec = np.empty((50, 33), F32)
    assert dequantize_int8(q.codes, q.scales, q.offsets, out=dec) is dec


def test_float64_and_noncontiguous_are_converted():
    x = np.random.default_rng(2).standard_normal((40, 24))
    expected = quantize_int8(x.astype(F32))
    np.testing.assert_array_equal(quantize_int8(x).codes, expected.codes)
    strided = np.asfortranarray(x.astype(F32))
    np.testing.assert_array_equal(quantize_int8(strided).codes, expected.codes)
    np.testing.assert_array_equal(quantize_int8(x.astype(F32)[:, ::1]).codes, expected.codes)
    view = np.random.default_rng(3).standard_normal((40, 48)).astype(F32)[:, ::2]
    np.testing.assert_array_equal(quantize_int4(view).codes, ref.quantize_int4_ref(view)[0])


def test_edges_empty_single_dim_large_values():
    empty = quantize_int8(np.empty((0, 5), F32))
    assert empty.codes.shape == (0, 5) and empty.scales.shape == (5,)
    assert quantize_int4(np.empty((0, 5), F32), "vector").codes.shape == (0, 3)
    one = quantize_int8(np.array([[3.0], [-1.0], [1.0]], F32))
    # 1.0 sits at step 127.5 in exact arithmetic, 127.49999 in float32: rounds down
    np.testing.assert_array_equal(one.codes[:, 0], [127, -128, -1])
    big = np.array([[1e30, -1e30, 5.0], [-1e30, 1e30, 5.0]], F32)
    q = quantize_int8(big)
    np.testing.assert_array_equal(q.codes, [[127, -128, -128], [-128, 127, -128]])
    np.testing.assert_array_equal(dequantize_int8(q.codes, q.scales, q.offsets)[:, 2], [5.0, 5.0])


def test_clip_uses_quantiles_and_clamps():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2000, 8)).astype(F32)
    x[0, 0] = 1000.0  # an outlier
    plain = quantize_int8(x)
    clipped = quantize_int8(x, clip=0.999)
    assert clipped.scales[0] < plain.scales[0] / 50
    assert clipped.codes[0, 0] == 127
    lo = np.quantile(x, 0.001, axis=0).astype(F32)
    np.testing.assert_array_equal(clipped.offsets, lo)
    codes, _, _ = ref.quantize_int8_ref(x, "dimension", clipped.scales, clipped.offsets)
    np.testing.assert_array_equal(clipped.codes, codes)


@pytest.mark.parametrize("quantize", [quantize_int8, quantize_int4])
def test_bad_input_messages(quantize):
    good = np.ones((3, 4), F32)
    with pytest.raises(TypeError, match=r"vectors: expected float32 or float64 array of shape \(n, d\), got int64"):
        quantize(np.ones((3, 4), np.int64))
    with pytest.raises(TypeError, match="vectors: expected float32 or float64 numpy array.*got list"):
        quantize([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"vectors: expected .* shape \(n, d\), got float32 with shape \(5,\)"):
        quantize(np.ones(5, F32))
    with pytest.raises(ValueError, match=r"d >= 1"):
        quantize(np.ones((3, 0), F32))
    for bad in (np.nan, np.inf, -np.inf):
        x = good.copy()
        x[2, 1] = bad
        with pytest.raises(ValueError, match="vectors: expected finite values, got NaN or inf in 1 row.*row 2"):
            quantize(x)
        with pytest.raises(ValueError, match="vectors: expected finite values"):
            quantize(x, "vector")
    with pytest.raises(ValueError, match="vectors: expected finite values"):
        quantize(np.array([[1e300, 0.0]]))  # float64 beyond float32 becomes inf
    for row in range(9):  # the min/max pass takes rows four at a time, then the remainder
        x = np.ones((9, 5), F32)
        x[row, 4] = np.nan
        with pytest.raises(ValueError, match=f"first at row {row} "):
            quantize(x)
    with pytest.raises(ValueError, match="per: expected 'dimension' or 'vector', got 'row'"):
        quantize(good, "row")
    with pytest.raises(ValueError, match=r"clip: expected a quantile in \(0.5, 1.0\]"):
        quantize(good, clip=0.2)
    with pytest.raises(ValueError, match="clip: only supported with per='dimension'"):
        quantize(good, "vector", clip=0.99)
    with pytest.raises(ValueError, match="scales: pass both scales and offsets"):
        quantize(good, scales=np.ones(4, F32))
    with pytest.raises(ValueError, match=r"scales: expected float32 array of shape \(4,\)"):
        quantize(good, scales=np.ones(3, F32), offsets=np.ones(3, F32))
    with pytest.raises(ValueError, match="overflows"):
        quantize(np.array([[3e38], [-3e38]], F32))
    with pytest.raises(TypeError, match="out: expected"):
        quantize(good, out=np.empty((3, 4), F32))


def test_dequantize_bad_input_messages():
    codes = np.zeros((2, 4), np.int8)
    s = np.ones(4, F32)
    with pytest.raises(TypeError, match=r"codes: expected int8 array of shape \(n, d\), got uint8"):
        dequantize_int8(codes.view(np.uint8), s, s)
    with pytest.raises(ValueError, match=r"scales: expected float32 array of shape \(2,\) \(one per vector\)"):
        dequantize_int8(codes, s, s, "vector")
    with pytest.raises(ValueError, match="offsets: expected finite values"):
        dequantize_int8(codes, s, np.full(4, np.nan, F32))
    with pytest.raises(ValueError, match=r"codes: expected uint8 array of shape \(n, 3\) for d=5"):
        dequantize_int4(np.zeros((2, 2), np.uint8), np.ones(5, F32), np.ones(5, F32))
    with pytest.raises(ValueError, match="dim: expected 4"):
        dequantize_int4(np.zeros((2, 2), np.uint8), s, s, dim=3)


def test_parallel_twins_match_serial():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((97, 19)).astype(F32)
    lo, hi, bad = ranges._minmax_columns_parallel(x, 7)
    np.testing.assert_array_equal(lo, x.min(0))
    np.testing.assert_array_equal(hi, x.max(0))
    assert bad == 0
    q = quantize_int8(x)
    _, inv = qmod._inverse_steps(q.scales)
    codes = np.empty_like(q.codes)
    assert qmod._encode_dim_parallel(x, q.offsets, inv, 255, codes) == 0
    np.testing.assert_array_equal(codes, q.codes)
    out = np.empty_like(x)
    bias = (q.offsets + F32(128) * q.scales).astype(F32)
    dmod._decode_dim_parallel(q.codes, q.scales, bias, out)
    np.testing.assert_array_equal(out, dequantize_int8(q.codes, q.scales, q.offsets))
