"""Committed VectorMemory files of every released format version keep loading to the same answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from memstrata import VectorMemory

GOLDEN = Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("make_vectors_golden", GOLDEN / "make_vectors_golden.py")
assert _spec is not None and _spec.loader is not None
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)


@pytest.mark.parametrize("name", sorted(make.CASES))
def test_v1_files_load_and_answer_as_when_written(name: str) -> None:
    expected = np.load(GOLDEN / "vectors-v1" / f"{name}.expected.npz")
    memory = VectorMemory.load(GOLDEN / "vectors-v1" / f"{name}.msvm")
    try:
        assert len(memory) == 37
        scores, ids = memory.search(make.queries(), k=6)
        np.testing.assert_array_equal(ids, expected["ids"])
        np.testing.assert_allclose(scores, expected["scores"], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(memory.get(np.arange(102, 110)), expected["vectors"])
        assert memory.metadata(104) == {"colour": "green", "rank": 4, "even": True}
        assert memory.metadata(103) is None
    finally:
        memory.close()
