"""Every SIMD instruction path this CPU runs (and the portable one) against the numpy reference.

``MEMSTRATA_SIMD`` forces the path; the scans must return the same bits on
each: int8 and int4 inner products (integer dots, then float32 scores) and
Hamming distances, with ties to the lower row.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from memstrata.kernels import hamming_topk, int8_topk, quantize_int4, quantize_int8, simd
from memstrata.kernels import search as smod

F32 = np.float32
PATHS = simd.supported_paths()


@contextmanager
def forced(path: str):
    """``MEMSTRATA_SIMD=path`` for the body (per example: hypothesis reuses a test's fixtures)."""
    before = os.environ.get(simd.ENV_VAR)
    os.environ[simd.ENV_VAR] = path
    try:
        assert simd.simd_path() == path
        yield
    finally:
        if before is None:
            del os.environ[simd.ENV_VAR]
        else:
            os.environ[simd.ENV_VAR] = before


on_every_path = pytest.mark.parametrize("path", PATHS)


def test_portable_always_and_best_by_default(monkeypatch):
    assert PATHS[0] == "portable"
    monkeypatch.delenv(simd.ENV_VAR, raising=False)
    assert simd.simd_path() == PATHS[-1]
    flags = simd.cpu_flags()
    if "avx2" in flags and "popcnt" in flags:
        assert "avx2" in PATHS


def test_unknown_or_unsupported_path_is_refused(monkeypatch):
    monkeypatch.setenv(simd.ENV_VAR, "sse9")
    with pytest.raises(ValueError, match="MEMSTRATA_SIMD: expected one of portable, avx2"):
        simd.simd_path()
    missing = [p for p in simd.PATHS if p not in PATHS]
    if missing:
        monkeypatch.setenv(simd.ENV_VAR, missing[0])
        with pytest.raises(ValueError, match="this CPU does not run"):
            simd.simd_path()


@st.composite
def dense_case(draw):
    """Rows, queries and k over shapes that cross tile and vector-width boundaries.

    Values come from a drawn seed (fast to generate, so every path gets many
    shapes): on a small grid (ties between rows are common) or continuous, and
    optionally with half the rows constant (equal scores everywhere).
    """
    n = draw(st.integers(0, 40))
    d = draw(st.sampled_from([1, 3, 15, 16, 17, 31, 33, 64, 65, 97]))
    nq = draw(st.sampled_from([1, 2, 3, 5]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        x = rng.integers(-2, 3, size=(max(n, 1), d)).astype(F32)
        q = rng.integers(-2, 3, size=(nq, d)).astype(F32)
    else:
        x = rng.uniform(-2, 2, size=(max(n, 1), d)).astype(F32)
        q = rng.uniform(-2, 2, size=(nq, d)).astype(F32)
    if draw(st.booleans()):
        x[: n // 2] = x[0]
    return x[:n], x, q, draw(st.integers(1, n + 5))


def on_every_path_given_dense_cases(test):
    """``test(path, case)`` as a property: on every path, over generated dense cases."""
    return on_every_path(given(case=dense_case())(test))


def scan_args(quantize, case):
    """A dense case as a scan's arguments ``(queries, codes, scales, offsets, k)``, codes fitted on its fit rows."""
    db, fit_on, queries, k = case
    return (queries, *ref.fitted_codes(quantize, db, fit_on), k)


@on_every_path_given_dense_cases
def test_int8_scan_matches_reference(path, case):
    with forced(path):
        args = scan_args(quantize_int8, case)
        ref.assert_same_topk(int8_topk(*args), ref.int8_topk_ref(*args))


@on_every_path_given_dense_cases
def test_int8_scan_with_row_bias_ranks_like_reference(path, case):
    """The L2 form: ``2 * (q . x_hat) - |x_hat|^2``, float32 operations in the kernel's order."""
    with forced(path):
        queries, codes, scales, offsets, k = scan_args(quantize_int8, case)
        bias = -np.linspace(0, 3, codes.shape[0], dtype=F32)[::-1].copy()
        scores, idx = smod.int8_search(
            queries, codes, scales, offsets, k, factor_scale=2.0, row_bias=bias
        )
        weights, factor, const = ref.int8_weights_ref(queries, scales, offsets)
        f = (factor * F32(2.0)).astype(F32)
        raw = (weights @ codes.astype(np.int64).T).astype(F32) * f[:, None] + bias[None, :]
        ref_idx = ref.topk_ref(raw, k)
        np.testing.assert_array_equal(idx, ref_idx)
        if codes.shape[0] == 0:
            assert np.isneginf(scores).all()
            return
        kept = np.take_along_axis(raw, np.maximum(ref_idx, 0), axis=1) + (const * F32(2.0))[:, None]
        np.testing.assert_array_equal(scores, np.where(ref_idx >= 0, kept, -np.inf).astype(F32))


@on_every_path_given_dense_cases
def test_int4_scan_matches_reference(path, case):
    with forced(path):
        args = scan_args(quantize_int4, case)
        ref.assert_same_topk(smod.int4_search(*args), ref.int4_topk_ref(*args))


@st.composite
def bit_case(draw):
    n = draw(st.integers(0, 40))
    width = draw(st.sampled_from([1, 7, 8, 31, 32, 33, 48, 64, 65, 130]))
    nq = draw(st.sampled_from([1, 2, 3, 5]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # few distinct bytes: many ties; all bytes: spread distances
    values = np.array([0, 1, 3, 255], np.uint8) if draw(st.booleans()) else np.arange(256, dtype=np.uint8)
    codes = rng.choice(values, size=(n, width))
    queries = rng.choice(values, size=(nq, width))
    return queries, codes, draw(st.integers(1, n + 5))


@on_every_path
@given(case=bit_case())
def test_hamming_scan_matches_reference(path, case):
    with forced(path):
        queries, codes, k = case
        ref.assert_same_topk(hamming_topk(queries, codes, k), ref.hamming_topk_ref(queries, codes, k))


@on_every_path
@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(60, 400), width=st.sampled_from([1, 6, 48, 65]),
       k=st.integers(64, 450), nq=st.sampled_from([1, 3]), ties=st.booleans())
def test_hamming_large_k_counts_like_the_reference(path, seed, n, width, k, nq, ties):
    """k >= 64 selects by counting distances: same rows, same order (distance, then row) as the reference."""
    rng = np.random.default_rng(seed)
    values = np.array([0, 1, 255], np.uint8) if ties else np.arange(256, dtype=np.uint8)
    codes = rng.choice(values, size=(n, width))
    queries = rng.choice(values, size=(nq, width))
    with forced(path):
        ref.assert_same_topk(hamming_topk(queries, codes, k), ref.hamming_topk_ref(queries, codes, k))


@on_every_path
def test_long_codes_do_not_overflow_byte_counters(path):
    """Over 31 chunks of 32 bytes the AVX2 byte counters are widened; all-ones rows count every bit."""
    with forced(path):
        width = 32 * 40 + 5
        codes = np.zeros((9, width), np.uint8)
        codes[3] = 255
        codes[5, :100] = 255
        queries = np.full((3, width), 255, np.uint8)
        dist, idx = hamming_topk(queries, codes, 9)
        ref_dist, ref_idx = ref.hamming_topk_ref(queries, codes, 9)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(dist, ref_dist)
        assert dist[0, 0] == 0 and dist[0, -1] == 8 * width


@on_every_path
def test_extreme_weights_stay_exact(path):
    """Queries at the int16 limit against codes at -128/127 for a long vector: int32 sums, no overflow."""
    with forced(path):
        d = 2000
        rng = np.random.default_rng(7)
        x = rng.choice(np.array([-1.0, 1.0], F32), size=(50, d))
        q = np.where(rng.random((3, d)) < 0.5, F32(-1.0), F32(1.0))
        quantized = quantize_int8(x)
        args = (q, quantized.codes, quantized.scales, quantized.offsets, 50)
        ref.assert_same_topk(int8_topk(*args), ref.int8_topk_ref(*args))


@on_every_path
@pytest.mark.parametrize("k", [1, 10, 700])
def test_batches_and_row_blocks(path, k):
    """67 queries (past one 64-query batch) over 600 rows (past two 256-row blocks), with tied rows."""
    rng = np.random.default_rng(k)
    x = rng.standard_normal((600, 45)).astype(F32)
    x[100:140] = x[7]
    q = np.concatenate([x[5:70], rng.standard_normal((2, 45)).astype(F32)])
    with forced(path):
        quantized = quantize_int8(x)
        got = int8_topk(q, quantized.codes, quantized.scales, quantized.offsets, k)
        want = ref.int8_topk_ref(q, quantized.codes, quantized.scales, quantized.offsets, k)
        ref.assert_same_topk(got, want)
        q4 = quantize_int4(x)
        got = smod.int4_search(q, q4.codes, q4.scales, q4.offsets, k)
        want = ref.int4_topk_ref(q, q4.codes, q4.scales, q4.offsets, k)
        ref.assert_same_topk(got, want)
        bits = np.packbits(x > 0, axis=1)
        qb = np.packbits(q > 0, axis=1)
        got = hamming_topk(qb, bits, k)
        want = ref.hamming_topk_ref(qb, bits, k)
        ref.assert_same_topk(got, want)


def test_threads_split_queries_without_changing_results(monkeypatch):
    """Big searches run query ranges on Numba's thread count; results are those of one thread."""
    import numba

    rng = np.random.default_rng(3)
    x = rng.standard_normal((700, 40)).astype(F32)
    q = rng.standard_normal((200, 40)).astype(F32)
    quantized = quantize_int8(x)
    q4 = quantize_int4(x)
    bits, qb = np.packbits(x > 0, axis=1), np.packbits(q > 0, axis=1)

    def everything():
        return (
            int8_topk(q, quantized.codes, quantized.scales, quantized.offsets, 7),
            smod.int4_search(q, q4.codes, q4.scales, q4.offsets, 7),
            hamming_topk(qb, bits, 7),
        )

    one = everything()
    before = numba.get_num_threads()
    monkeypatch.setattr(smod, "PARALLEL_MIN_WORK", 1)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        assert smod._scan_threads(200, 10**9) == numba.get_num_threads()
        many = everything()
    finally:
        numba.set_num_threads(before)
    for got, want in zip(many, one):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
