"""Subprocess for the crash tests: writes in a loop and acknowledges each write on stdout."""

from __future__ import annotations

import sys

from memstrata import MemoryStore


def value(i: int) -> dict[str, object]:
    j = i // 2  # two keys in a row hold the same content: the second shares the first's blob
    return {"i": j, "text": f"memory number {j} " * (1 + j % 7), "tags": ["crash", str(j % 3)]}


def main(path: str, start: int) -> None:
    cfg = {"durability": "normal", "migration_interval_seconds": 0.005, "hot_max_bytes": 4096,
           "hot_idle_seconds": 0.0, "warm_idle_seconds": 0.01, "train_after": 50}
    store = MemoryStore(path, cfg)
    out = sys.stdout
    i = start
    while True:
        tier = ("hot", "warm", "cold")[i % 3]
        store.store(f"k{i}", value(i), tier=tier)
        if i % 4 == 0:  # the same content again while the key alone holds it: a write of its entry only
            store.store(f"k{i}", value(i), tier="warm")
        if i % 5 == 4 and i - 2 >= start:
            store.delete(f"k{i - 2}")
            out.write(f"d {i - 2}\n")
        out.write(f"w {i}\n")
        out.flush()
        if i % 97 == 0:
            store.compact()
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
