"""Recall-targeted rescore depth (``rescore="auto"``): the target holds on data the calibration never saw."""

from __future__ import annotations

import numpy as np
import pytest

from memstrata import VectorMemory
from memstrata.vectors import _recall as cal

F32 = np.float32


def _held_apart(shared_data):
    path = shared_data / "dev" / "embeddings.npy"
    if not path.exists():
        pytest.skip(f"development embeddings not found at {path}")
    x = np.load(path).astype(F32)
    order = np.random.default_rng(13).permutation(x.shape[0])
    half = x.shape[0] // 2
    return x[order[:half]], x[order[half:]]


def _recall_at_10(stored: np.ndarray, queries: np.ndarray, ids: np.ndarray) -> float:
    """Recall@10 against exact cosine search over ``stored`` (a result tied with the 10th counts)."""
    s = stored / np.linalg.norm(stored, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    exact = q @ s.T
    kth = -np.partition(-exact, 9, axis=1)[:, 9]
    got = np.take_along_axis(exact, ids[:, :10], axis=1)
    return float((got >= kth[:, None] - 1e-6).mean())


@pytest.mark.parametrize("codec", ["binary", "int4", "int8"])
def test_target_recall_holds_on_the_held_apart_half(shared_data, codec):
    """Calibrate on one half of the development set (stored); search with the other half (never stored)."""
    stored, unseen = _held_apart(shared_data)
    memory = VectorMemory(stored.shape[1], codec, "cosine", rescore="auto", target_recall=0.99)
    try:
        memory.add(stored)
        _, ids = memory.search(unseen[:1000], k=10)
        stats = memory.stats()
        assert stats["target_met"] is True
        assert stats["recall_lower_bound"] >= cal.required(0.99) > 0.99
        assert stats["rescore_depth"] in cal.DEPTHS and stats["calibrated_rows"] == stored.shape[0]
        assert _recall_at_10(stored, unseen[:1000], ids) >= 0.99
    finally:
        memory.close()


def test_calibration_is_refreshed_as_the_memory_grows():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((64, 32)).astype(F32)
    x = (base[rng.integers(0, 64, 2400)] + 0.3 * rng.standard_normal((2400, 32))).astype(F32)
    memory = VectorMemory(32, "binary", "ip", rescore="auto", target_recall=0.95)
    try:
        memory.add(x[:100])
        assert memory.stats()["measured_recall"] is None  # below MIN_ROWS: deepest setting, nothing measured
        assert memory.stats()["rescore_depth"] == cal.DEPTHS[-1]
        memory.add(x[100:600])
        first = memory.stats()
        assert first["calibrated_rows"] == 600 and 0 <= first["measured_recall"] <= 1
        memory.add(x[600:900])  # 1.5x: still current
        assert memory.stats()["calibrated_rows"] == 600
        memory.add(x[900:])  # 4x: measured again
        assert memory.stats()["calibrated_rows"] == 2400
    finally:
        memory.close()


def test_higher_target_never_chooses_a_shallower_depth():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1500, 48)).astype(F32)
    depths = []
    for target in (0.5, 0.9, 0.99):
        memory = VectorMemory(48, "binary", "cosine", rescore="auto", target_recall=target)
        try:
            memory.add(x)
            depths.append(memory.stats()["rescore_depth"])
        finally:
            memory.close()
    assert depths == sorted(depths) and depths[0] < depths[-1]


def test_auto_rescore_survives_save_and_load(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((500, 16)).astype(F32)
    memory = VectorMemory(16, "int8", "l2", rescore="auto", target_recall=0.97)
    try:
        memory.add(x)
        before = memory.search(x[:5], k=4)
        memory.save(tmp_path / "m.vec")
        loaded = VectorMemory.load(tmp_path / "m.vec", originals_path=tmp_path / "orig.f32")
    finally:
        memory.close()
    try:
        assert loaded.rescore == "auto" and loaded.target_recall == 0.97
        after = loaded.search(x[:5], k=4)
        np.testing.assert_array_equal(after[1], before[1])
    finally:
        loaded.close()


def test_wilson_lower_bound_and_bad_targets():
    assert cal.wilson_lower(0, 0) == 0.0
    assert 0.985 < cal.wilson_lower(1990, 2000) < 0.995
    assert cal.wilson_lower(2000, 2000) < 1.0
    for bad in (0, 1.5, -0.1, True, "0.9"):
        with pytest.raises(ValueError, match="target_recall: expected a value in"):
            VectorMemory(8, "binary", "cosine", rescore="auto", target_recall=bad)
    with pytest.raises(ValueError, match="rescore: expected a positive integer or None"):
        VectorMemory(8, "binary", "cosine", rescore="always")


# ---------------------------------------------------------------- shortlist="auto"


def _agreement(full: np.ndarray, full_scores: np.ndarray, got_scores: np.ndarray) -> float:
    """Share of the full scan's top 10 the shortlist found (a score tied with the 10th counts)."""
    kth = full_scores[:, 9]
    return float((got_scores[:, :10] >= kth[:, None] - 1e-6).mean())


@pytest.mark.parametrize("rescore", [None, "auto"])
def test_auto_shortlist_keeps_the_target_of_the_full_scan_on_the_held_apart_half(shared_data, rescore):
    stored, unseen = _held_apart(shared_data)
    auto = VectorMemory(stored.shape[1], "int8", "cosine", rescore=rescore, shortlist="auto", target_recall=0.99)
    full = VectorMemory(stored.shape[1], "int8", "cosine", rescore=rescore, target_recall=0.99)
    try:
        auto.add(stored)
        full.add(stored)
        got_s, _ = auto.search(unseen[:1000], 10)
        full_s, full_i = full.search(unseen[:1000], 10)
        stats = auto.stats()
        assert stats["shortlist_size"] is not None and stats["shortlist_size"] < len(stored)  # it did shorten
        assert stats["shortlist_agreement"] >= 0.99 and stats["shortlist_calibrated_rows"] == len(stored)
        assert _agreement(full_i, full_s, got_s) >= 0.99
        if rescore == "auto":
            assert _recall_at_10(stored, unseen[:1000], auto.search(unseen[:1000], 10)[1]) >= 0.985
    finally:
        auto.close()
        full.close()


def test_auto_shortlist_scans_every_row_of_a_small_memory():
    x = np.random.default_rng(3).standard_normal((300, 32)).astype(F32)
    memory = VectorMemory(32, "int8", shortlist="auto")
    memory.add(x)
    assert memory.stats()["shortlist_size"] is None  # fewer rows than the smallest shortlist is worth
    s, i = memory.search(x[:5], 3)
    assert i[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_auto_shortlist_recalibrates_as_the_memory_grows_and_survives_save(tmp_path):
    rng = np.random.default_rng(4)
    centers = rng.standard_normal((40, 32)).astype(F32)
    x = (centers[rng.integers(0, 40, 8000)] + 0.4 * rng.standard_normal((8000, 32))).astype(F32)
    memory = VectorMemory(32, "int8", shortlist="auto", target_recall=0.95)
    memory.add(x[:1500])
    first = memory.stats()["shortlist_calibrated_rows"]
    memory.add(x[1500:])
    memory.search(x[:3], 5)
    assert first == 1500 and memory.stats()["shortlist_calibrated_rows"] == 8000
    memory.save(tmp_path / "m.msvm")
    loaded = VectorMemory.load(tmp_path / "m.msvm")
    assert loaded.shortlist == "auto" and loaded.stats()["shortlist_size"] is not None
    np.testing.assert_array_equal(loaded.search(x[:20], 5)[1], memory.search(x[:20], 5)[1])
    memory.close()
    loaded.close()


@pytest.mark.parametrize("kwargs", [{"codec": "int4", "shortlist": "auto"}, {"codec": "int8", "shortlist": "some"}])
def test_auto_shortlist_arguments_are_checked(kwargs):
    with pytest.raises(ValueError, match="shortlist"):
        VectorMemory(16, **kwargs)
