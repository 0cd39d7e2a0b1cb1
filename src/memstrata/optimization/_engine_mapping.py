"""An engine with ``store`` / ``retrieve`` / ``delete`` methods, seen as a mapping of bytes.

:meth:`memstrata.MemoryStore.wrap` keeps its records in any mapping of bytes;
this adapter lets an application's own memory engine (one with ``store(key,
value)``, ``retrieve(key) -> value or None`` and ``delete(key)``) be that
mapping, so memstrata sits in front of the engine without changing it.

Such an engine cannot list its keys, so the adapter keeps a directory of the keys
it wrote inside the engine itself: a snapshot record plus a journal of one small
record per added or removed key. Every journal record is written before the
record it names and removed keys are journaled after the removal, so a crash at
any point leaves a directory that names every record present (perhaps a few that
are already gone, which read as absent). ``close()`` folds the journal into a
new snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

import msgspec

__all__ = ["EngineMapping"]

PREFIX = "memstrata/"
_SNAPSHOT = PREFIX + "directory"


def _journal_key(generation: int, n: int) -> str:
    return f"{PREFIX}directory/{generation}/{n}"


class EngineMapping(MutableMapping[bytes, bytes]):
    """A ``MutableMapping[bytes, bytes]`` stored in an engine with store/retrieve/delete.

    Keys are kept in the engine as ``"memstrata/<hex of key>"``; values as bytes.

    >>> class Engine:
    ...     def __init__(self): self.data = {}
    ...     def store(self, key, value): self.data[key] = value; return True
    ...     def retrieve(self, key): return self.data.get(key)
    ...     def delete(self, key): return self.data.pop(key, None) is not None
    >>> engine = Engine()
    >>> m = EngineMapping(engine)
    >>> m[b"k"] = b"v"; m.close()
    >>> dict(EngineMapping(engine))
    {b'k': b'v'}
    """

    def __init__(self, engine: Any) -> None:
        for name in ("store", "retrieve", "delete"):
            if not callable(getattr(engine, name, None)):
                raise TypeError(f"wrapped_engine: expected an object with store/retrieve/delete methods, it lacks {name!r}")
        self.engine = engine
        self._lock = threading.Lock()
        self._keys: set[bytes] = set()
        snapshot = engine.retrieve(_SNAPSHOT)
        self._generation = 0
        if snapshot is not None:
            state = msgspec.msgpack.decode(bytes(snapshot))
            self._generation = int(state["generation"])
            self._keys = {bytes.fromhex(k) for k in state["keys"]}
        self._n_journal = 0
        while True:  # replay the journal written since the snapshot
            entry = engine.retrieve(_journal_key(self._generation, self._n_journal))
            if entry is None:
                break
            op, key = msgspec.msgpack.decode(bytes(entry))
            (self._keys.add if op == "+" else self._keys.discard)(bytes.fromhex(key))
            self._n_journal += 1

    def _journal(self, op: str, key: bytes) -> None:
        self.engine.store(_journal_key(self._generation, self._n_journal), msgspec.msgpack.encode((op, key.hex())))
        self._n_journal += 1

    def __getitem__(self, key: bytes) -> bytes:
        value = self.engine.retrieve(PREFIX + bytes(key).hex())
        if value is None:
            raise KeyError(key)
        return bytes(value)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        key = bytes(key)
        with self._lock:
            if key not in self._keys:
                self._journal("+", key)
                self._keys.add(key)
            self.engine.store(PREFIX + key.hex(), bytes(value))

    def __delitem__(self, key: bytes) -> None:
        key = bytes(key)
        with self._lock:
            if key not in self._keys:
                raise KeyError(key)
            self.engine.delete(PREFIX + key.hex())
            self._keys.discard(key)
            self._journal("-", key)

    def __iter__(self) -> Iterator[bytes]:
        with self._lock:
            return iter(sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def close(self) -> None:
        """Fold the journal into a new snapshot (the old journal records are then removed)."""
        with self._lock:
            old_generation, old_n = self._generation, self._n_journal
            if old_n == 0:
                return
            self._generation += 1
            state = {"generation": self._generation, "keys": sorted(k.hex() for k in self._keys)}
            self.engine.store(_SNAPSHOT, msgspec.msgpack.encode(state))
            self._n_journal = 0
            for n in range(old_n):
                self.engine.delete(_journal_key(old_generation, n))

