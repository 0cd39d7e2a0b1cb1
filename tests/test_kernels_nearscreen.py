"""The near-duplicate kernels against their plain numpy twins (here: they serve the agent's write path only)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata.kernels.nearscreen import prepare_row, prepare_row_into, rerank, screen, screen_path

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def prepare_row_ref(x: np.ndarray, planes: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, float]:
    """unit_rows + VectorIndex.sketch + encode_vector, as the numpy path computes them."""
    square = float(np.einsum("i,i->", x, x, dtype=np.float64))
    unit = (x / np.float64(np.sqrt(square))).astype(np.float32)
    sketch = np.packbits(unit[None, :] @ planes > 0, axis=1).view(np.uint64)[0]
    peak = float(np.abs(unit).max()) or 1.0
    scale = peak / 127.0
    codes = np.round(unit / scale).astype(np.int8)
    return square, unit, sketch, codes, scale


def screen_ref(first: np.ndarray, second: np.ndarray, n: int, code: np.ndarray, r1: int, r2: int) -> np.ndarray:
    near1 = np.bitwise_count(first[:n] ^ code[0])
    both = near1 + np.bitwise_count(second[:n] ^ code[1])
    return np.flatnonzero((near1 <= r1) & (both <= r2))


def rerank_ref(words: np.ndarray, mult: np.ndarray, slots: np.ndarray, ids: np.ndarray, q: np.ndarray,
               dim: int) -> tuple[np.ndarray, int]:
    """Scores of the rows before the first bad one, and that row's index (-1: none)."""
    check = (words[:, :-1] * mult[:-1]).sum(axis=1, dtype=np.uint64) + slots.astype(np.uint64) * mult[-1] + np.uint64(1)
    bad = np.flatnonzero((check != words[:, -1]) | (words[:, 0].view(np.int64) != ids))
    first_bad = int(bad[0]) if bad.size else -1
    codes = words[:, 2:].view(np.int8)[:, :dim].astype(np.float32)
    scales = words[:, 1].copy().view(np.float32)[::2]
    return (codes * scales[:, None]) @ q, first_bad


def _rows(rng: np.random.Generator, m: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_words = 2 + (dim + 7) // 8 + 1
    words = np.zeros((m, n_words), np.uint64)
    raw = words.view(np.uint8)
    ids = rng.integers(0, 2**40, m).astype(np.int64)
    raw[:, :8] = ids.reshape(m, 1).view(np.uint8)
    raw[:, 8:12] = rng.uniform(1e-3, 1e-2, m).astype(np.float32).reshape(m, 1).view(np.uint8)
    raw[:, 16 : 16 + dim] = rng.integers(-127, 128, (m, dim)).astype(np.int8).view(np.uint8)
    mult = rng.integers(0, 2**63, n_words, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    slots = rng.integers(0, 2**30, m).astype(np.int64)
    words[:, -1] = (words[:, :-1] * mult[:-1]).sum(axis=1, dtype=np.uint64) + slots.astype(np.uint64) * mult[-1] + 1
    return words, mult, slots, ids


@given(d=st.integers(1, 80), bits=st.sampled_from([64, 128]), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1e-20, 1e-3, 1.0, 1e15]))
def test_prepare_row_matches_the_numpy_path(d: int, bits: int, seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(d) * scale).astype(np.float32)
    planes = rng.standard_normal((d, bits)).astype(np.float32)
    square, unit, sketch, codes, s = prepare_row(x, planes)
    if not square:  # every value underflowed to zero in float32
        assert not np.any(x)
        return
    r_square, r_unit, r_sketch, r_codes, r_scale = prepare_row_ref(x, planes)
    assert square == pytest.approx(r_square, rel=1e-12)
    np.testing.assert_allclose(unit, r_unit, rtol=2e-7, atol=1e-30)
    # from the same unit row the int8 form is bit-identical
    peak = float(np.abs(unit).max())
    assert s == peak / 127.0
    np.testing.assert_array_equal(codes, np.round(unit / s).astype(np.int8))
    np.testing.assert_array_equal(np.abs(codes.astype(int) - r_codes.astype(int)) <= 1, True)
    # a sign bit may differ only where the projection is within rounding of zero
    proj = unit.astype(np.float64) @ planes.astype(np.float64)
    differ = np.unpackbits(sketch.view(np.uint8)) != np.unpackbits(r_sketch.view(np.uint8))
    assert not differ.any() or np.abs(proj[differ]).max() < 1e-4
    assert sketch.shape == (bits // 64,) and sketch.dtype == np.uint64 and r_scale > 0


@given(d=st.integers(1, 40), bits=st.sampled_from([64, 128]), seeds=st.lists(st.integers(0, 2**32 - 1), min_size=1,
                                                                             max_size=4))
def test_prepare_row_into_reused_arrays_gives_what_fresh_ones_give(d: int, bits: int, seeds: list[int]) -> None:
    """Arrays reused from row to row (as a VectorIndex reuses them) hold exactly prepare_row's answer for each row."""
    planes = np.random.default_rng(seeds[0] + 1).standard_normal((d, bits)).astype(np.float32)
    unit, proj, sketch, codes = (np.full(d, 7, np.float32), np.full(bits, 7, np.float32),
                                 np.full(bits // 64, 7, np.uint64), np.full(d, 7, np.int8))
    for seed in seeds:
        x = np.random.default_rng(seed).standard_normal(d).astype(np.float32)
        square, scale = prepare_row_into(x, planes, unit, proj, sketch.view(np.uint8), codes)
        f_square, f_unit, f_sketch, f_codes, f_scale = prepare_row(x, planes)
        assert (square, scale) == (f_square, f_scale)
        np.testing.assert_array_equal(unit, f_unit)
        np.testing.assert_array_equal(sketch, f_sketch)
        np.testing.assert_array_equal(codes, f_codes)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.0])
def test_prepare_row_reports_a_row_it_cannot_normalize(bad: float) -> None:
    x = np.zeros(16, np.float32) if bad == 0.0 else np.full(16, bad, np.float32)
    square = prepare_row(x, np.ones((16, 64), np.float32))[0]
    assert not (square > 0 and np.isfinite(square))


@given(n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1), r1=st.integers(0, 64), extra=st.integers(0, 64),
       cap=st.integers(0, 40), near=st.integers(0, 30))
def test_screen_matches_reference(n: int, seed: int, r1: int, extra: int, cap: int, near: int) -> None:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 2**64, n + 3, dtype=np.uint64)
    second = rng.integers(0, 2**64, n + 3, dtype=np.uint64)
    code = rng.integers(0, 2**64, 2, dtype=np.uint64)
    for i in rng.integers(0, max(n, 1), min(near, n)):  # rows a few bits from the code, so some pass
        first[i] = code[0] ^ (np.uint64(1) << np.uint64(rng.integers(0, 64)))
        second[i] = code[1] ^ (np.uint64(1) << np.uint64(rng.integers(0, 64)))
    out = np.full(cap, -7, np.int64)
    hits = screen(first, second, n, code, r1, r1 + extra, out)
    want = screen_ref(first, second, n, code, r1, r1 + extra)
    assert hits == want.size
    np.testing.assert_array_equal(out[: min(hits, cap)], want[:cap])
    assert (out[min(hits, cap) :] == -7).all()


@given(m=st.integers(0, 6), dim=st.integers(1, 70), seed=st.integers(0, 2**32 - 1), damage=st.integers(-1, 20))
def test_rerank_matches_reference_and_reports_the_first_bad_row(m: int, dim: int, seed: int, damage: int) -> None:
    rng = np.random.default_rng(seed)
    words, mult, slots, ids = _rows(rng, m, dim)
    if m and damage >= 0:  # one changed bit in one word of one row, or the row under another id
        row, word = int(rng.integers(0, m)), damage % words.shape[1]
        if damage % 3 == 2:
            ids[row] ^= 1
        else:
            words[row, word] ^= np.uint64(1) << np.uint64(rng.integers(0, 64))
    q = rng.standard_normal(dim).astype(np.float32)
    out = np.full(m, np.nan, np.float32)
    bad = rerank(words, mult, slots, ids, q, out)
    want, want_bad = rerank_ref(words, mult, slots, ids, q, dim)
    assert bad == want_bad
    done = m if bad < 0 else bad
    np.testing.assert_allclose(out[:done], want[:done], rtol=1e-4, atol=1e-5)


def test_screen_path_names_numba_and_the_popcount() -> None:
    path = screen_path()
    assert path.startswith("numba:") and path.rsplit(":", 1)[1] in ("popcnt", "portable")
