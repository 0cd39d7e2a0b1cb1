"""Write the golden store of format version 1 (run once; the files are committed).

    python tests/golden/make_store_golden.py

``test_ops_migrate.py`` detects its version and migrates copies of it up and
down. Never regenerate a released version's store: add ``store-v<N>`` instead.
"""

from __future__ import annotations

from pathlib import Path

from memstrata import MemoryStore

HERE = Path(__file__).resolve().parent / "store-v1"
T0 = 1_763_700_000.0

if __name__ == "__main__":
    with MemoryStore(HERE, {"migration_interval_seconds": None, "durability": "full"}, clock=lambda: T0) as s:
        for i in range(40):
            s.store(f"memory:{i}", {"agent": "golden", "kind": "memory", "last_used": T0 - i * 86400 * 5,
                                    "confidence": i / 40, "text": f"golden memory {i}"}, tier=("warm", "cold")[i % 2])
        s.store("blob", b"\x00\x01golden")
    (HERE / "LOCK").unlink()
