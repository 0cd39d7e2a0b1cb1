"""Sign-bit scores and row checksums against their numpy twins in tests/reference.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import sign_scores_ref, word_checksums_ref

from memstrata.kernels.rowscore import sign_scores, sign_table, word_checksums


@given(n=st.integers(1, 40), d=st.integers(1, 70), m=st.integers(0, 60), seed=st.integers(0, 2**32 - 1))
def test_sign_scores_match_reference(n: int, d: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    bits = np.packbits(x > 0, axis=1)
    rows = rng.integers(0, n, m).astype(np.int64)
    w = rng.standard_normal(d).astype(np.float32)
    got = sign_scores(sign_table(w), bits, rows)
    assert got.dtype == np.float32 and got.shape == (m,)
    np.testing.assert_allclose(got, sign_scores_ref(w, bits, rows), rtol=1e-5, atol=1e-4)


def test_sign_table_rejects_a_matrix() -> None:
    with pytest.raises(ValueError, match="w"):
        sign_table(np.zeros((2, 8), np.float32))


@given(m=st.integers(0, 20), words=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_word_checksums_match_reference(m: int, words: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 2**64, (m, words), dtype=np.uint64)
    mult = rng.integers(0, 2**63, words, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    slots = rng.integers(0, 2**40, m).astype(np.int64)
    got = word_checksums(w, mult, slots)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, word_checksums_ref(w, mult, slots))


@given(seed=st.integers(0, 2**32 - 1), flip=st.integers(0, 63))
def test_word_checksums_change_with_any_word(seed: int, flip: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 2**64, (1, 6), dtype=np.uint64)
    mult = rng.integers(0, 2**63, 6, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    slots = np.zeros(1, np.int64)
    before = word_checksums(w, mult, slots)
    w[0, int(rng.integers(0, 5))] ^= np.uint64(1) << np.uint64(flip)
    assert word_checksums(w, mult, slots)[0] != before[0]
