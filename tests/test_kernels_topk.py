"""Top-k kernels (Hamming, int8, float rescoring) against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from memstrata.kernels import candidates as cmod
from memstrata.kernels import hamming_topk, int8_topk, quantize_int4, quantize_int8, rescore_topk
from memstrata.kernels import search as smod

F32 = np.float32


@st.composite
def bit_codes(draw):
    n = draw(st.integers(0, 40))
    width = draw(st.sampled_from([1, 2, 3, 8, 16, 33, 48]))  # whole words, SIMD chunks and tails
    few = st.sampled_from([0, 1, 3, 255])  # few distinct rows: many ties
    elements = draw(st.sampled_from([few, st.integers(0, 255)]))
    codes = draw(hnp.arrays(np.uint8, (n, width), elements=elements))
    # up to 12 queries: whole and partial tiles of queries
    queries = draw(hnp.arrays(np.uint8, (draw(st.integers(1, 12)), width), elements=elements))
    k = draw(st.integers(1, 45))
    return queries, codes, k


@given(bit_codes())
def test_hamming_topk_matches_reference(case):
    queries, codes, k = case
    ref.assert_same_topk(hamming_topk(queries, codes, k), ref.hamming_topk_ref(queries, codes, k))


@st.composite
def int8_case(draw):
    n = draw(st.integers(0, 40))
    d = draw(st.integers(1, 24))
    grid = st.integers(-3, 3).map(F32)  # ties between rows are common on a grid
    elements = draw(st.sampled_from([grid, st.floats(-2, 2, width=32)]))
    x = draw(hnp.arrays(F32, (max(n, 1), d), elements=elements))
    q = draw(hnp.arrays(F32, (draw(st.integers(1, 4)), d), elements=elements))
    return x[:n] if n else x[:0], x, q, draw(st.integers(1, 45))


@given(int8_case())
def test_int8_topk_matches_reference(case):
    db, fit_on, queries, k = case
    codes, scales, offsets = ref.fitted_codes(quantize_int8, db, fit_on)
    args = (queries, codes, scales, offsets, k)
    ref.assert_same_topk(int8_topk(*args), ref.int8_topk_ref(*args))


@given(int8_case(), st.booleans())
def test_int4_search_matches_reference(case, use_candidates):

    db, fit_on, queries, k = case
    packed, scales, offsets = ref.fitted_codes(quantize_int4, db, fit_on)
    cand = None
    if use_candidates and db.shape[0]:
        cand = np.tile(np.arange(-1, db.shape[0]), (queries.shape[0], 1))
    args = (queries, packed, scales, offsets, k)
    ref.assert_same_topk(smod.int4_search(*args, candidates=cand), ref.int4_topk_ref(*args))


def _random_int8(seed: int, n: int, d: int, nq: int):  # type: ignore[no-untyped-def]
    """``(rows, queries, quantized rows)``: standard-normal data of a fixed seed."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(F32)
    return x, rng.standard_normal((nq, d)).astype(F32), quantize_int8(x)


def test_int8_scores_approximate_dequantized_dot_products():
    _x, q, quantized = _random_int8(0, 300, 64, 5)
    scores, idx = int8_topk(q, quantized.codes, quantized.scales, quantized.offsets, 300)
    from memstrata.kernels import dequantize_int8

    exact = q @ dequantize_int8(quantized.codes, quantized.scales, quantized.offsets).T
    got = np.take_along_axis(exact, idx, axis=1)
    # int16 query weights: error well below 1e-3 of the score scale
    assert np.abs(got - scores).max() < 1e-3 * np.abs(exact).max()


def test_int8_candidates_and_parallel_twins():
    x, q, quantized = _random_int8(1, 200, 16, 7)
    full_s, full_i = int8_topk(q, quantized.codes, quantized.scales, quantized.offsets, 5)
    cand = np.tile(np.arange(-1, 200), (7, 1))
    s, i = int8_topk(q, quantized.codes, quantized.scales, quantized.offsets, 5, candidates=cand)
    np.testing.assert_array_equal(i, full_i)
    np.testing.assert_array_equal(s, full_s)
    w, f, _ = smod.query_weights(q, quantized.scales, quantized.offsets)
    out_s = np.empty((7, 5), F32)
    out_i = np.empty((7, 5), np.int64)
    cmod._int8_topk_candidates_parallel(w, f, quantized.codes, np.zeros(200, F32), cand, 5, out_s, out_i, 3)
    np.testing.assert_array_equal(out_i, full_i)
    packed = quantize_int4(x)
    w4, f4, _ = smod.int4_weights(q, packed.scales, packed.offsets)
    f4 = f4.astype(F32)
    out4 = np.empty((7, 5), F32), np.empty((7, 5), np.int64)
    cmod._int4_topk_parallel(w4, f4, packed.codes, np.zeros(200, F32), cand, 5, *out4, 3)
    serial4 = np.empty((7, 5), F32), np.empty((7, 5), np.int64)
    cmod._int4_topk_serial(w4, f4, packed.codes, np.zeros(200, F32), cand, 5, *serial4, 1)
    np.testing.assert_array_equal(out4[1], serial4[1])


@given(st.integers(0, 30), st.integers(1, 20), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_rescore_topk_is_exact_up_to_float_rounding(n, d, k, seed):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, d)).astype(F32)
    queries = rng.standard_normal((3, d)).astype(F32)
    cand = rng.integers(-1, n, size=(3, 2 * n + 1)) if n else np.full((3, 2), -1)
    scores, idx = rescore_topk(queries, vectors, cand, k)
    for a in range(3):
        rows = cand[a][cand[a] >= 0]  # a row listed twice is scored twice
        exact = vectors[rows].astype(np.float64) @ queries[a].astype(np.float64)
        want = min(k, rows.size)
        assert (idx[a, want:] == -1).all() and np.isneginf(scores[a, want:]).all()
        kept = idx[a, :want]
        # every kept row is a candidate, and no better candidate was left out
        assert set(kept.tolist()) <= set(rows.tolist())
        kept_exact = vectors[kept].astype(np.float64) @ queries[a].astype(np.float64)
        np.testing.assert_allclose(scores[a, :want], kept_exact, rtol=1e-5, atol=1e-5)
        if want:
            kth = np.sort(exact)[::-1][want - 1]
            assert (kept_exact >= kth - 1e-5).all()
            assert (np.diff(scores[a, :want]) <= 0).all()


def test_rescore_accepts_memmap(tmp_path):
    vectors = np.random.default_rng(2).standard_normal((50, 8)).astype(F32)
    path = tmp_path / "v.f32"
    vectors.tofile(path)
    mapped = np.memmap(path, dtype=F32, mode="r", shape=(50, 8))
    cand = np.arange(50)[None, :]
    s, i = rescore_topk(vectors[7], mapped, cand, 1)
    assert i[0, 0] == 7


def test_bad_input_messages():
    codes = np.zeros((4, 2), np.uint8)
    with pytest.raises(TypeError, match=r"query_codes: expected uint8 array of shape \(n, n_bytes\)"):
        hamming_topk(np.zeros((1, 2), np.int8), codes, 1)
    with pytest.raises(ValueError, match="codes: expected 2 bytes per row to match query_codes, got uint8 with shape"):
        hamming_topk(np.zeros((1, 2), np.uint8), np.zeros((4, 3), np.uint8), 1)
    with pytest.raises(ValueError, match="k: expected a positive integer, got 0"):
        hamming_topk(np.zeros((1, 2), np.uint8), codes, 0)
    q = quantize_int8(np.ones((3, 4), F32))
    with pytest.raises(TypeError, match=r"codes: expected int8 array of shape \(n, 4\)"):
        int8_topk(np.ones(4, F32), q.codes.view(np.uint8), q.scales, q.offsets, 1)
    with pytest.raises(ValueError, match="queries: expected finite values"):
        int8_topk(np.array([1, np.nan, 0, 0], F32), q.codes, q.scales, q.offsets, 1)
    with pytest.raises(ValueError, match=r"scales: expected float32 array of shape \(4,\) \(per='dimension'\)"):
        int8_topk(np.ones(4, F32), q.codes, np.ones(3, F32), q.offsets, 1)
    with pytest.raises(ValueError, match="candidates: expected row numbers below 3"):
        int8_topk(np.ones(4, F32), q.codes, q.scales, q.offsets, 1, candidates=np.array([[5]]))
    with pytest.raises(TypeError, match="vectors: expected float32 array of shape"):
        rescore_topk(np.ones(4, F32), np.ones((3, 4)), np.array([[0]]), 1)
    with pytest.raises(TypeError, match="candidates: expected int64 array"):
        rescore_topk(np.ones(4, F32), np.ones((3, 4), F32), np.array([[0.0]]), 1)


@pytest.mark.parametrize("distinct", [2, 256])
def test_hamming_batches_with_heavy_ties(distinct):
    """Batches of queries over thousands of rows; with two distinct bytes nearly every distance ties."""
    rng = np.random.default_rng(distinct)
    codes = rng.integers(0, distinct, size=(3000, 16)).astype(np.uint8)
    queries = rng.integers(0, distinct, size=(9, 16)).astype(np.uint8)
    for k in (1, 10, 150):
        ref.assert_same_topk(hamming_topk(queries, codes, k), ref.hamming_topk_ref(queries, codes, k))
