"""Write the golden stores of store format version 1 (run once; the directories are committed).

    python tests/golden/make_v1_stores.py

Each store is a closed ``MemoryStore`` directory as format version 1 left it
(``store.sqlite`` holding warm frames, the index and metadata; ``packs/``
holding cold frames), with content on every tier, deleted keys, pinned keys
and a trained zstd dictionary. ``expected.json`` next to each lists what every
key must read back as. ``test_store_upgrade.py`` opens them (read-only) and
upgrades copies of them to the current format, forever. Never regenerate a
released version's stores.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "stores-v1"


def texts(n: int, prefix: str) -> dict[str, Any]:
    return {
        f"{prefix}{i}": {"text": f"{prefix} note {i}: the user prefers metric units and short answers", "importance": i % 5}
        for i in range(n)
    }


def build(name: str, cfg: dict[str, Any], fill: Any, root: Path = HERE) -> None:
    from memstrata import MemoryStore

    out = root / name
    if out.exists():
        shutil.rmtree(out)
    expected: dict[str, Any] = {}
    with MemoryStore(out, cfg) as store:
        fill(store, expected)
        expected = {k: v for k, v in expected.items() if v is not None}
        assert store.verify()["ok"]
    (out / "LOCK").unlink(missing_ok=True)
    (root / f"{name}.expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


def fill_mixed(store: Any, expected: dict[str, Any]) -> None:
    """Hot, warm and cold keys, a few deletes, one pinned key, dedup."""
    for k, v in texts(12, "hot:").items():
        store.store(k, v)
        expected[k] = v
    for k, v in texts(12, "warm:").items():
        store.store(k, v, tier="warm")
        expected[k] = v
    for k, v in texts(12, "cold:").items():
        store.store(k, v, tier="cold")
        expected[k] = v
    store.store("pinned", {"rule": "never move me"}, pin=True)
    expected["pinned"] = {"rule": "never move me"}
    store.store(b"bytes-key", [1, 2, 3], tier="warm")
    expected["b:bytes-key"] = [1, 2, 3]
    for k in ("hot:3", "warm:4", "cold:5"):
        store.delete(k)
        expected[k] = None
    store.store("warm:1", {"text": "overwritten"}, tier="warm")
    expected["warm:1"] = {"text": "overwritten"}


def fill_dictionary(store: Any, expected: dict[str, Any]) -> None:
    """Enough similar records to train a zstd dictionary; some frames use it."""
    for i in range(140):
        k = f"rec:{i}"
        v = {"trace_id": f"perf_delta_{i:06d}", "metric": "accuracy", "old": i / 100, "new": i / 99, "tags": ["a", "b"]}
        store.store(k, v, tier="warm" if i % 3 else "cold")
        expected[k] = v
    for i in range(0, 140, 17):
        store.delete(f"rec:{i}")
        expected[f"rec:{i}"] = None


def fill_compacted(store: Any, expected: dict[str, Any]) -> None:
    """A store that went through delete + compact (tombstones gone, packs rewritten)."""
    for k, v in texts(30, "c:").items():
        store.store(k, v, tier="cold")
        expected[k] = v
    for i in range(0, 30, 2):
        store.delete(f"c:{i}")
        expected[f"c:{i}"] = None
    store.compact()
    store.store("after-compact", {"v": 1}, tier="warm")
    expected["after-compact"] = {"v": 1}


def main() -> int:
    HERE.mkdir(exist_ok=True)
    base = {"migration_interval_seconds": None, "hot_max_bytes": 4096, "pack_max_bytes": 2048}
    build("mixed", base, fill_mixed)
    build("dictionary", {**base, "train_after": 100}, fill_dictionary)
    build("compacted", base, fill_compacted)
    print(f"wrote golden v1 stores under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
