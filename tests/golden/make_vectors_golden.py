"""Write the golden ``VectorMemory`` files of format version 1 (run once; the files are committed).

    python tests/golden/make_vectors_golden.py

Each case builds a small memory from fixed vectors, deletes a few ids, saves it
and records what a search must answer in ``<case>.expected.npz``.
``test_vectors_golden.py`` checks the committed files still load to these
answers, forever. Never regenerate the files of a released version.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent / "vectors-v1"

#: name -> VectorMemory keyword arguments
CASES: dict[str, dict[str, Any]] = {
    "int8-cosine": {"codec": "int8", "metric": "cosine"},
    "int8-shortlist-ip": {"codec": "int8", "metric": "ip", "shortlist": 8},
    "int4-l2": {"codec": "int4", "metric": "l2"},
    "binary-rescore-l2": {"codec": "binary", "metric": "l2", "rescore": 4},
    "float32-cosine": {"codec": "float32", "metric": "cosine"},
    "int8-rescore-cosine": {"codec": "int8", "metric": "cosine", "rescore": 3},
}


def vectors() -> np.ndarray:
    rng = np.random.default_rng(20261129)
    return rng.normal(size=(40, 24)).astype(np.float32)


def queries() -> np.ndarray:
    return vectors()[:5] + np.float32(0.01)


def metadata() -> list[dict[str, Any] | None]:
    colours = ("red", "green", "blue")
    return [None if i % 7 == 3 else {"colour": colours[i % 3], "rank": i, "even": i % 2 == 0} for i in range(40)]


def build(kwargs: dict[str, Any], originals: Path) -> Any:
    from memstrata import VectorMemory

    memory = VectorMemory(24, originals_path=originals if kwargs.get("rescore") else None, **kwargs)
    memory.add(vectors(), ids=np.arange(100, 140), metadata=metadata())
    memory.delete([101, 117, 133])
    return memory


def main() -> int:
    import tempfile

    HERE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs in CASES.items():
            memory = build(kwargs, Path(tmp) / f"{name}.f32")
            memory.save(HERE / f"{name}.msvm")
            scores, ids = memory.search(queries(), k=6)
            np.savez(HERE / f"{name}.expected.npz", scores=scores, ids=ids, vectors=memory.get(np.arange(102, 110)))
            memory.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
