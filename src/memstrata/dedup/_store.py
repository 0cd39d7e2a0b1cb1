"""DedupStore: content-addressed blobs with reference counts over any bytes mapping."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

from memstrata.codecs import CompressionEngine, decode, digest, serialize
from memstrata.errors import CorruptDataError

__all__ = ["DedupStore"]

FORMAT = 1
_META_KEY = b"\x00dedup"
_KEY = b"k"  # b"k" + key   -> 16-byte digest
_REF = b"r"  # b"r" + digest -> <QQQ: references, serialized length, frame length
_BLOB = b"b"  # b"b" + digest -> frame
_ENTRY = struct.Struct("<QQQ")
_pack = _ENTRY.pack
_unpack = _ENTRY.unpack


def _key_bytes(key: Any) -> bytes:
    t = type(key)
    if t is str:  # exact types first: the common case costs no isinstance
        text: str = key
        return text.encode("utf-8")
    if t is bytes:
        raw: bytes = key
        return raw
    if isinstance(key, (str, bytes)):
        return key.encode("utf-8") if isinstance(key, str) else bytes(key)
    raise TypeError(f"key: expected str or bytes, got {t.__name__}")


class DedupStore:
    """Content-addressed storage: identical values are stored once, with a reference count.

    Parameters
    ----------
    backend : mutable mapping of bytes to bytes, optional
        Where everything lives: frames, the key index and reference counts (an
        in-memory ``dict`` by default). Reopening a ``DedupStore`` on the same
        mapping gives the same store.
    engine : CompressionEngine, optional
        Compresses blobs (lossless); a default engine otherwise.
    eager_gc : bool
        Remove a blob as soon as its last reference goes (default). With
        ``False``, unreferenced blobs stay (a later ``put`` of the same content
        revives them) until :meth:`gc`.
    bloom_capacity : int
        Initial capacity of the Bloom filter in front of the digest index; it is
        rebuilt twice as large when outgrown.

    Notes
    -----
    Keys are ``str`` (stored as UTF-8) or ``bytes``; ``"a"`` and ``b"a"`` are the
    same key. Values are anything :func:`memstrata.serialize` accepts; they are
    identified by the XXH3-128 digest of their serialized bytes. Writes go
    blob → reference count → key, and releases go key → reference count → blob,
    so a crash between two writes can leave an unreferenced blob or a count
    that is too high (both repaired by :meth:`gc`), never a key that reads wrong
    data. Thread-safe.

    Examples
    --------
    >>> from memstrata import DedupStore
    >>> store = DedupStore()
    >>> d1, dup1 = store.put("a", {"text": "hello world"})
    >>> d2, dup2 = store.put("b", {"text": "hello world"})
    >>> d1 == d2, dup1, dup2
    (True, False, True)
    >>> store.get("b")
    {'text': 'hello world'}
    >>> s = store.get_statistics()
    >>> s["unique_blobs"], s["references"], s["dedup_ratio"]
    (1, 2, 2.0)
    >>> store.delete("a"); store.delete("b"); len(store), store.get_statistics()["unique_blobs"]
    (0, 0)
    """

    def __init__(
        self,
        backend: MutableMapping[bytes, bytes] | None = None,
        *,
        engine: CompressionEngine | None = None,
        eager_gc: bool = True,
        bloom_capacity: int = 100_000,
    ) -> None:
        from memstrata._native.bloom import BloomFilter

        self._BloomFilter = BloomFilter
        self.backend: MutableMapping[bytes, bytes] = {} if backend is None else backend
        self.engine = engine if engine is not None else CompressionEngine()
        self.eager_gc = eager_gc
        self._lock = threading.RLock()
        self._puts = self._duplicates = 0
        meta = self.backend.get(_META_KEY)
        if meta is None:
            self.backend[_META_KEY] = bytes((FORMAT,))
        elif bytes(meta) != bytes((FORMAT,)):
            raise CorruptDataError(f"DedupStore: backend holds dedup format {bytes(meta)!r}, expected {FORMAT}")
        self._load(max(int(bloom_capacity), 1024))

    def _load(self, capacity: int) -> None:
        """Rebuild the Bloom filter and the counters from the backend (one scan)."""
        refs_digests = []
        n_keys = n_blobs = n_refs = logical = unique = stored = 0
        for k in list(self.backend.keys()):
            tag = k[:1]
            if tag == _KEY:
                n_keys += 1
            elif tag == _REF:
                refs, n, fl = _unpack(self.backend[k])
                refs_digests.append(bytes(k[1:]))
                n_blobs += 1
                n_refs += refs
                logical += refs * n
                unique += n
                stored += fl
        while capacity < 2 * len(refs_digests):
            capacity *= 2
        self._bloom = self._BloomFilter(capacity)
        for d in refs_digests:
            self._bloom.add(d)
        self._bloom_count = len(refs_digests)
        self._n_keys, self._n_blobs, self._n_refs = n_keys, n_blobs, n_refs
        self._logical, self._unique, self._stored = logical, unique, stored

    # --------------------------------------------------------------- writes --

    def put(self, key: str | bytes, value: Any) -> tuple[bytes, bool]:
        """Store ``value`` under ``key``; returns ``(digest, was_duplicate)``.

        ``was_duplicate`` is true when the content was already stored (under any
        key). Overwriting a key with other content releases the old blob.
        """
        kb = _KEY + _key_bytes(key)
        data = serialize(value)
        d = digest(data)
        backend = self.backend
        with self._lock:
            self._puts += 1
            old = backend.get(kb)
            if old == d:
                self._duplicates += 1
                return d, True
            rk = _REF + d
            entry = backend.get(rk) if d in self._bloom else None
            if entry is not None:
                refs, n, fl = _unpack(entry)
                backend[rk] = _pack(refs + 1, n, fl)
                self._n_refs += 1
                self._logical += n
                self._duplicates += 1
                duplicate = True
            else:
                frame = self.engine.compress_serialized(data, d)
                backend[_BLOB + d] = frame
                backend[rk] = _pack(1, len(data), len(frame))
                self._add_to_bloom(d)
                self._n_blobs += 1
                self._n_refs += 1
                self._logical += len(data)
                self._unique += len(data)
                self._stored += len(frame)
                duplicate = False
            backend[kb] = d
            if old is None:
                self._n_keys += 1
            else:
                self._release(bytes(old))
            return d, duplicate

    def _add_to_bloom(self, d: bytes) -> None:
        self._bloom.add(d)
        self._bloom_count += 1
        if self._bloom_count > self._bloom.capacity:
            self._load(self._bloom.capacity * 2)

    def _release(self, d: bytes) -> None:
        rk = _REF + d
        entry = self.backend.get(rk)
        if entry is None:  # already gone (a crash between writes): nothing to release
            return
        refs, n, fl = _unpack(entry)
        if refs == 0:
            return
        self._n_refs -= 1
        self._logical -= n
        if refs == 1 and self.eager_gc:
            del self.backend[rk]
            self.backend.pop(_BLOB + d, None)
            self._n_blobs -= 1
            self._unique -= n
            self._stored -= fl
        else:
            self.backend[rk] = _pack(refs - 1, n, fl)

    def delete(self, key: str | bytes) -> None:
        """Remove ``key``; its blob goes with its last reference. ``KeyError`` if absent."""
        kb = _KEY + _key_bytes(key)
        with self._lock:
            old = self.backend.get(kb)
            if old is None:
                raise KeyError(key)
            del self.backend[kb]
            self._n_keys -= 1
            self._release(bytes(old))

    def gc(self) -> dict[str, int]:
        """Recount references from the key index, and remove every unreferenced blob.

        Also repairs what a crash between two writes can leave behind (orphan
        blobs, counts that are too high). Returns ``{"blobs_removed",
        "bytes_freed", "refcounts_fixed"}``.
        """
        with self._lock:
            backend = self.backend
            counts: dict[bytes, int] = {}
            blobs: list[bytes] = []
            entries: dict[bytes, tuple[int, int, int]] = {}
            for k in list(backend.keys()):
                tag = k[:1]
                if tag == _KEY:
                    d = bytes(backend[k])
                    counts[d] = counts.get(d, 0) + 1
                elif tag == _REF:
                    entries[bytes(k[1:])] = _unpack(backend[k])
                elif tag == _BLOB:
                    blobs.append(bytes(k[1:]))
            removed = freed = fixed = 0
            for d in blobs:
                if counts.get(d, 0) == 0:
                    frame = backend.pop(_BLOB + d)
                    backend.pop(_REF + d, None)
                    removed += 1
                    freed += len(frame)
            for d, (refs, n, fl) in entries.items():
                want = counts.get(d, 0)
                if want == 0:
                    backend.pop(_REF + d, None)
                    fixed += refs != 0
                elif want != refs:
                    backend[_REF + d] = _pack(want, n, fl)
                    fixed += 1
            self._load(self._bloom.capacity)
            return {"blobs_removed": removed, "bytes_freed": freed, "refcounts_fixed": fixed}

    # ---------------------------------------------------------------- reads --

    def get(self, key: str | bytes) -> Any:
        """The value stored under ``key`` (verified against its digest); ``KeyError`` if absent."""
        d = self.backend.get(_KEY + _key_bytes(key))
        if d is None:
            raise KeyError(key)
        frame = self.backend.get(_BLOB + d)
        if frame is None:
            raise CorruptDataError(f"DedupStore: key {key!r} names blob {bytes(d).hex()}, which is missing")
        return self.engine.decompress(frame, expected_digest=bytes(d))

    def get_digest(self, key: str | bytes) -> bytes:
        """The content digest ``key`` points at; ``KeyError`` if absent."""
        d = self.backend.get(_KEY + _key_bytes(key))
        if d is None:
            raise KeyError(key)
        return bytes(d)

    def refcount(self, content_digest: bytes) -> int:
        """References to a blob (0 when unknown or unreferenced)."""
        entry = self.backend.get(_REF + bytes(content_digest))
        return 0 if entry is None else _unpack(entry)[0]

    def __contains__(self, key: object) -> bool:
        try:
            kb = _KEY + _key_bytes(key)
        except TypeError:
            return False
        return kb in self.backend

    def __len__(self) -> int:
        return self._n_keys

    def keys(self) -> Iterator[bytes]:
        """Every key, as bytes (in backend order)."""
        for k in list(self.backend.keys()):
            if k[:1] == _KEY:
                yield bytes(k[1:])

    def verify(self) -> dict[str, Any]:
        """Check every blob's frame and digest; returns ``{"ok", "blobs", "bad"}``."""
        bad = []
        n = 0
        for k in list(self.backend.keys()):
            if k[:1] == _BLOB:
                n += 1
                try:
                    decode(self.backend[k], expected_digest=bytes(k[1:]))
                except CorruptDataError:
                    bad.append(bytes(k[1:]))
        return {"ok": not bad, "blobs": n, "bad": bad}

    def get_statistics(self) -> dict[str, Any]:
        """Counters of the store.

        ``unique_blobs``, ``references`` (keys pointing at blobs), ``keys``,
        ``logical_bytes`` (serialized size of every referenced value, counted per
        reference), ``unique_bytes`` (serialized size of the blobs),
        ``stored_bytes`` (their frames), ``dedup_ratio`` (logical / unique),
        ``bytes_saved`` (logical − stored), ``puts`` and ``duplicate_puts``
        (since this object was made).
        """
        with self._lock:
            return {
                "unique_blobs": self._n_blobs,
                "references": self._n_refs,
                "keys": self._n_keys,
                "logical_bytes": self._logical,
                "unique_bytes": self._unique,
                "stored_bytes": self._stored,
                "dedup_ratio": (self._logical / self._unique) if self._unique else 1.0,
                "bytes_saved": self._logical - self._stored,
                "puts": self._puts,
                "duplicate_puts": self._duplicates,
            }

