"""Subprocess for the tier-backend crash contract: applies batches in a loop and acknowledges each.

``python _tier_writer.py KIND PATH START``: batch ``i`` puts keys
``b"%08d:%d" % (i, j)`` for ``j < batch_size(i)`` and ``b"last"``, and deletes
batch ``i - 3``'s keys, in one ``apply``; after it returns, ``a i`` goes to stdout.
Every tenth batch is followed by a ``flush`` (``f i``).
"""

from __future__ import annotations

import sys

from memstrata.tiers import LogBackend, SQLiteBackend


def batch_size(i: int) -> int:
    return 1 + i % 7


def batch_keys(i: int) -> list[bytes]:
    return [b"%08d:%d" % (i, j) for j in range(batch_size(i))]


def batch_value(i: int, j: int) -> bytes:
    return (b"batch %d item %d " % (i, j)) * (1 + (i * 7 + j) % 40)


def open_backend(kind: str, path: str) -> LogBackend | SQLiteBackend:
    if kind == "sqlite":
        return SQLiteBackend(path)
    if kind == "log":
        return LogBackend(path, segment_max_bytes=64 << 10)  # small segments: kills land during rolls too
    raise ValueError(f"kind: expected 'sqlite' or 'log', got {kind!r}")


def main(kind: str, path: str, start: int) -> None:
    backend = open_backend(kind, path)
    out = sys.stdout
    i = start
    while True:
        puts = {k: batch_value(i, j) for j, k in enumerate(batch_keys(i))}
        puts[b"last"] = b"%d" % i
        backend.apply(puts, deletes=batch_keys(i - 3) if i - 3 >= start else ())
        out.write(f"a {i}\n")
        if i % 10 == 9:
            backend.flush()
            out.write(f"f {i}\n")
        out.flush()
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
