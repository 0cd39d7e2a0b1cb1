"""The layers MemoryCore fans out to, each behind a small adapter.

Every value a layer holds is a **record**: ``seq`` (8 bytes, big-endian: the
audit sequence of the write), a kind byte (value, pattern or tombstone), a
16-byte SHA-256 check over key, seq, kind and payload, then the payload. Applying a
record is idempotent and ordered by ``seq`` (``put_newer`` keeps the newer), so
replays and concurrent writers converge on the log's last word for each key.
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from memstrata._native.auditchain import sha256
from memstrata._native.corewrite import encode_record
from memstrata.errors import CorruptDataError

__all__ = ["Record", "StoreBackend", "TextEmbedder", "decode_record", "encode_record", "pattern_is_live"]

VALUE, TOMBSTONE, PATTERN = 0, 1, 2
_HEAD = struct.Struct(">QB16s")
_SEQ_KIND = struct.Struct(">QB")
HEAD_BYTES = _HEAD.size


class Record(NamedTuple):
    seq: int
    kind: int
    payload: bytes


def _check(key: bytes, head: bytes, payload: bytes, _sha256: Any = sha256) -> bytes:
    # SHA-256 (not a faster keyed hash) so that PostgreSQL can build the same record server-side;
    # the native one: hashlib's per-call overhead is most of the cost for records this small
    check: bytes = _sha256(b"".join((len(key).to_bytes(4, "big"), key, head, payload)))[:16]
    return check


def encode_record_py(key: bytes, seq: int, kind: int, payload: bytes) -> bytes:
    """The record of ``payload`` under ``key``: the Python twin of :func:`encode_record` (in C)."""
    head = _SEQ_KIND.pack(seq, kind)
    return b"".join((head, _check(key, head, payload), payload))


def decode_record(key: bytes, rec: bytes, where: str) -> Record:
    """Parse and check a record read for ``key``; CorruptDataError when it is not that key's bytes."""
    if len(rec) < HEAD_BYTES:
        raise CorruptDataError(f"{where}: record of {key!r} is truncated ({len(rec)} bytes)")
    seq, kind, check = _HEAD.unpack_from(rec)
    payload = rec[HEAD_BYTES:]
    if kind not in (VALUE, TOMBSTONE, PATTERN) or _check(key, rec[:9], payload) != check:
        raise CorruptDataError(f"{where}: record of {key!r} fails its checksum (damaged or another key's record)")
    return Record(seq, kind, payload)


def unwrap_value(kind: int, value: Any) -> Any:
    """The value a record holds: patterns are stored as ``{"value", "pattern_type", "confidence"}``."""
    return value["value"] if kind == PATTERN else value


def record_seq(rec: bytes | None) -> int:
    return -1 if rec is None or len(rec) < 8 else int.from_bytes(rec[:8], "big")


class StoreBackend:
    """A :class:`memstrata.MemoryStore` seen as a backend of records under a key prefix.

    Uses only the store's public methods. Values are the record bytes, so the
    store deduplicates, compresses and tiers them as usual. Records are written
    to the warm tier: the core's cache layer is their RAM copy (a second one in
    the store's hot tier would double the RAM and, for a key the hot tier
    holds, take the store's general write plan instead of its one-call
    rewrite); the store's rules still promote keys read often.
    """

    def __init__(self, store: Any, prefix: str, tier: str = "warm") -> None:
        self.store = store
        self.prefix = prefix
        self.tier = tier

    def get(self, key: bytes) -> bytes | None:
        v = self.store.retrieve(self.prefix + key.decode(), None)
        return None if v is None else bytes(v)

    def put(self, key: bytes, value: bytes) -> None:
        self.store.store(self.prefix + key.decode(), value, self.tier)

    def delete(self, key: bytes) -> None:
        try:
            self.store.delete(self.prefix + key.decode())
        except KeyError:
            pass

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        full = self.prefix + prefix.decode()
        n = len(self.prefix)
        for k in sorted(k for k in self.store.keys() if isinstance(k, str) and k.startswith(full)):
            v = self.store.retrieve(k, None)
            if v is not None:
                yield k[n:].encode(), bytes(v)

    def put_newer(self, key: bytes, rec: bytes, ttl_seconds: float | None = None) -> bool:
        """Store ``rec`` (a tombstone removes the key).

        No read-and-compare: a store has one writing process (its lock file),
        MemoryCore applies writes in log order under its lock, and a replay
        applies only each key's last entry, so ``rec`` is never older than
        what the store holds.
        """
        if rec[8] == TOMBSTONE:
            self.delete(key)
        else:
            self.store.store(self.prefix + key.decode(), rec, self.tier)
        return True

    def put_many(self, records: list[tuple[bytes, bytes]]) -> None:
        """:meth:`put_newer` of several keys' records (each key once): one transaction for the values, one for the deletes."""
        p = self.prefix
        puts = [(p + kb.decode(), rec) for kb, rec in records if rec[8] != TOMBSTONE]
        gone = [p + kb.decode() for kb, rec in records if rec[8] == TOMBSTONE]
        if puts:
            self.store.store_many(puts, self.tier)
        if gone:
            self.store.delete_many(gone, missing_ok=True)

    def flush(self) -> None:
        self.store.flush()

    def close(self) -> None:
        self.store.close()


class RedisCache:
    """The cache layer on :class:`memstrata.tiers.RedisBackend`: records with TTL, newer wins (atomically)."""

    def __init__(self, backend: Any, tombstone_ttl_seconds: float = 3600.0) -> None:
        self.backend = backend
        self.tombstone_ttl_seconds = tombstone_ttl_seconds

    def get(self, key: bytes) -> bytes | None:
        rec: bytes | None = self.backend.get(key)
        return rec

    def put_newer(self, key: bytes, rec: bytes, ttl_seconds: float | None = None) -> bool:
        if rec[8] == TOMBSTONE:  # remembered for a while, so an older in-flight write cannot refill it
            ttl_seconds = self.tombstone_ttl_seconds
        return bool(self.backend.put_newer(key, rec, ttl_seconds))

    def delete(self, key: bytes) -> None:
        self.backend.delete(key)

    def close(self) -> None:
        self.backend.close()


class HotCache:
    """The embedded cache layer: :class:`memstrata.tiers.HotTier` (RAM, bounded in bytes) plus expiry times."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        from memstrata.tiers import HotTier

        self.hot = HotTier(max_bytes)
        self._expires: dict[bytes, float] = {}
        self.clock = clock
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        rec = self.hot.get(key)
        if rec is not None and self._expires:
            t = self._expires.get(key)
            if t is not None and self.clock() >= t:
                self.delete(key)
                return None
        return rec

    def put_newer(self, key: bytes, rec: bytes, ttl_seconds: float | None = None) -> bool:
        with self._lock:
            held = self.hot.get(key)
            if held is not None and held[:8] >= rec[:8]:  # big-endian sequence numbers compare as bytes
                return False
            if rec[8] == TOMBSTONE:
                self.delete(key)
                return True
            self.hot.put(key, rec)
            if ttl_seconds is not None:
                self._expires[key] = self.clock() + ttl_seconds
            elif self._expires:
                self._expires.pop(key, None)
            return True

    def delete(self, key: bytes) -> None:
        self.hot.pop(key)
        self._expires.pop(key, None)

    def close(self) -> None:
        self.hot.clear()


_TOKEN = re.compile(r"\w+")


class TextEmbedder:
    """A dependency-free text embedder: hashed word and character-trigram features, L2-normalized.

    Texts that share words land near each other (cosine), which is what the
    semantic fallback of reads needs; pass any ``callable(list[str]) -> (n, d)
    float32`` to :class:`MemoryCore` (``embedder=``) for a learned model.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in _TOKEN.findall(text.lower()):
                feats = [word] + [word[i : i + 3] for i in range(max(0, len(word) - 2))]
                for j, f in enumerate(feats):
                    h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
                    out[row, h % self.dim] += (2.0 if j == 0 else 1.0) * (1.0 if (h >> 63) & 1 else -1.0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out /= norms
        return out


class VectorIndex:
    """Text values in a :class:`memstrata.VectorMemory` (float32 codes, cosine), by key."""

    def __init__(self, embedder: Callable[[list[str]], np.ndarray], dim: int) -> None:
        from memstrata.vectors import VectorMemory

        self.embedder = embedder
        self.memory = VectorMemory(dim, codec="float32", metric="cosine")
        self._ids: dict[str, int] = {}
        self._keys: dict[int, str] = {}
        self._next = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def put(self, key: str, text: str) -> None:
        vec = np.asarray(self.embedder([text]), np.float32).reshape(1, -1)
        with self._lock:
            self._remove(key)
            if not vec.any():  # no words: nothing a search could match
                return
            i = self._next
            self._next += 1
            self.memory.add(vec, ids=np.array([i]))
            self._ids[key] = i
            self._keys[i] = key

    def _remove(self, key: str) -> None:
        old = self._ids.pop(key, None)
        if old is not None:
            del self._keys[old]
            self.memory.delete([old])

    def delete(self, key: str) -> None:
        with self._lock:
            self._remove(key)

    def search(self, text: str, k: int = 1) -> list[tuple[str, float]]:
        with self._lock:
            if not self._ids:
                return []
            q = np.asarray(self.embedder([text]), np.float32).reshape(1, -1)
            scores, ids = self.memory.search(q, k=min(k, len(self._ids)))
            return [(self._keys[int(i)], float(s)) for s, i in zip(scores[0], ids[0]) if int(i) in self._keys]

    def close(self) -> None:
        self.memory.close()


def pattern_is_live(pattern: bytes, values_record: bytes | None) -> bool:
    """Whether a patterns-table record is the key's value, given its record in the values table.

    A pattern write puts a tombstone of its own sequence number into the
    values table; a later value or delete puts a newer record there, which
    covers the pattern (records start with the big-endian sequence number).
    """
    if pattern[8] != PATTERN:
        return False
    return values_record is None or (values_record[8] == TOMBSTONE and values_record[:8] <= pattern[:8])
