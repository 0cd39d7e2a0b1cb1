"""Write the golden stores of store format version 2 (run once; the directories are committed).

    python tests/golden/make_v2_stores.py

The same contents as the format-1 golden stores (``make_v1_stores.py``: every
tier, deletes, a pinned key, a trained zstd dictionary, a compacted store),
plus ``arrays``: numpy arrays (blosc2 frames), raw bytes and a value far
larger than a record read-ahead. Each is a closed ``MemoryStore`` directory
as format 2 left it (``log/`` segment files and ``CHECKPOINT``; ``packs/``),
and ``NAME.expected.json`` lists what every key reads back as (arrays as
``{"dtype", "shape", "data"}``). ``test_store_golden_v2.py`` opens them and
upgrades them, forever: a later format must keep reading these. Never
regenerate them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

try:
    from golden import make_v1_stores as v1  # under pytest: tests/ is on the path
except ImportError:
    import make_v1_stores as v1  # type: ignore[no-redef]  # run as a script from tests/golden

HERE = Path(__file__).resolve().parent / "stores-v2"


def array_json(a: np.ndarray) -> dict[str, Any]:
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.ravel().tolist()}


def fill_arrays(store: Any, expected: dict[str, Any]) -> None:
    """int8 and float32 vectors on warm and cold, raw bytes, and a 40 KB text."""
    rng = np.random.default_rng(2)
    for i in range(6):
        q = rng.integers(-127, 128, 64).astype(np.int8)
        f = rng.standard_normal(16).astype(np.float32)
        store.store(f"q{i}", q, tier="warm" if i % 2 else "cold")
        store.store(f"f{i}", f, tier="warm")
        expected[f"q{i}"], expected[f"f{i}"] = array_json(q), array_json(f)
    store.store("blob", bytes(range(256)) * 3, tier="warm")
    expected["blob"] = {"bytes": (bytes(range(256)) * 3).hex()}
    big = {"text": " ".join(f"word{i % 997}" for i in range(6000))}
    store.store("big", big, tier="warm")
    expected["big"] = big


def main() -> int:
    HERE.mkdir(exist_ok=True)
    base = {"migration_interval_seconds": None, "hot_max_bytes": 4096, "pack_max_bytes": 2048}
    v1.build("mixed", base, v1.fill_mixed, HERE)
    v1.build("dictionary", {**base, "train_after": 100}, v1.fill_dictionary, HERE)
    v1.build("compacted", base, v1.fill_compacted, HERE)
    v1.build("arrays", base, fill_arrays, HERE)
    print(f"wrote golden v2 stores under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
