"""DedupStore: content-addressed blobs with reference counts over any bytes mapping.

Its key index is the tiers' index format (:data:`memstrata.tiers.ENTRY` records
under :func:`memstrata.tiers.encode_key` keys): every put and delete takes the
next sequence number, a delete leaves a tombstone, and ``"a"`` and ``b"a"`` are
two keys, exactly as in :class:`memstrata.MemoryStore`.
"""

from __future__ import annotations

import struct
import threading
import warnings
from collections.abc import Iterator, MutableMapping
from typing import Any

from memstrata.codecs import CompressionEngine, decode, digest, serialize
from memstrata.errors import CorruptDataError
from memstrata.tiers import ENTRY, F_TOMBSTONE, decode_key, encode_key

__all__ = ["DedupStore"]

# 1: keys as raw UTF-8/bytes (``"a"`` and ``b"a"`` one key) -> 16-byte digest;
# 2: keys and entry records of the tiers' index (upgraded in place on open)
FORMAT = 2
_META_KEY = b"\x00dedup"
_SEQ_KEY = b"\x00seq"  # <Q: the last sequence number given out
_KEY = b"k"  # b"k" + encode_key(key) -> ENTRY: seq, flags, digest
_REF = b"r"  # b"r" + digest -> <QQQ: references, serialized length, frame length
_BLOB = b"b"  # b"b" + digest -> frame
_ENTRY = struct.Struct("<QQQ")
_pack = _ENTRY.pack
_unpack = _ENTRY.unpack
_SEQ = struct.Struct("<Q")
_pack_seq = _SEQ.pack
_unpack_entry = ENTRY.unpack
_ENTRY_BYTES = ENTRY.size
_STR_KEY = _KEY + b"s"  # encode_key's tags for str and bytes keys, inlined on the hot path
_BYTES_KEY = _KEY + b"b"
_V1_ENTRY_BYTES = 16  # a format-1 entry is the bare digest


def _twin(kb: bytes) -> bytes | None:
    """The index key of the same bytes under the other key type (``"a"`` <-> ``b"a"``), if it has one."""
    tag, raw = kb[1:2], kb[2:]
    if tag == b"s":
        return _KEY + b"b" + raw
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return _KEY + b"s" + raw


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
    Keys are ``str`` or ``bytes``, encoded as in :class:`memstrata.MemoryStore`:
    ``"a"`` and ``b"a"`` are two keys. (Until format 2 they were one key; a
    lookup that finds only the other type's key still uses it, with a
    ``DeprecationWarning``: name keys by the type they were stored with.)
    Every put and delete takes the next sequence number (:attr:`seq`,
    :meth:`sequence`); a delete leaves a tombstone, which :meth:`gc` drops.
    Values are anything :func:`memstrata.serialize` accepts; they are
    identified by the XXH3-128 digest of their serialized bytes. Writes go
    blob → reference count → sequence number → key, and releases go key →
    reference count → blob, so a crash between two writes can leave an
    unreferenced blob or a count that is too high (both repaired by
    :meth:`gc`), never a key that reads wrong data. A format-1 mapping is
    upgraded in place when opened (a crash during the upgrade is finished by
    the next open). Thread-safe.

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
        elif bytes(meta) == b"\x01":
            self._upgrade_from_format_1()
        elif bytes(meta) != bytes((FORMAT,)):
            raise CorruptDataError(f"DedupStore: backend holds dedup format {bytes(meta)!r}, expected 1 or {FORMAT}")
        raw_seq = self.backend.get(_SEQ_KEY)
        self._seq = 0 if raw_seq is None else _SEQ.unpack(bytes(raw_seq))[0]
        self._load(max(int(bloom_capacity), 1024))

    def _upgrade_from_format_1(self) -> None:
        """Rewrite format-1 entries (bare digests under raw keys) as index entries with sequence numbers.

        A raw key that is valid UTF-8 becomes a ``str`` key, any other a
        ``bytes`` key. Longer keys go first: a new entry ``b"k" + tag + raw`` can
        only land where the format-1 entry of the key ``tag + raw`` was, which
        by then is rewritten; each entry is written before the old one goes, so
        an interrupted upgrade loses nothing and the next open finishes it.
        """
        backend = self.backend
        raw_seq = backend.get(_SEQ_KEY)
        seq = 0 if raw_seq is None else _SEQ.unpack(bytes(raw_seq))[0]
        old = [k for k in list(backend.keys()) if k[:1] == _KEY and len(backend[k]) == _V1_ENTRY_BYTES]
        for k in sorted(old, key=len, reverse=True):
            raw = bytes(k[1:])
            try:
                key: str | bytes = raw.decode("utf-8")
            except UnicodeDecodeError:
                key = raw
            seq += 1
            backend[_SEQ_KEY] = _SEQ.pack(seq)
            backend[_KEY + encode_key(key)] = ENTRY.pack(seq, 0, bytes(backend[k]))
            del backend[k]
        backend[_META_KEY] = bytes((FORMAT,))

    def _live(self, kb: bytes) -> bytes | None:
        """The digest a live entry at ``kb`` names (None: no entry, or a tombstone)."""
        raw = self.backend.get(kb)
        if raw is None:
            return None
        if len(raw) != ENTRY.size:
            raise CorruptDataError(f"DedupStore: the index entry {bytes(kb)!r} is {len(raw)} bytes, expected {ENTRY.size}")
        _seq, flags, d = ENTRY.unpack(raw)
        return None if flags & F_TOMBSTONE else bytes(d)

    def _resolve(self, key: Any) -> tuple[bytes, bytes | None]:
        """``(index key, live digest or None)`` for ``key``; the other type's key only with a warning."""
        backend = self.backend
        twin: bytes | None
        if type(key) is str:  # encode_key and _twin inlined: this runs on every call
            raw_key = key.encode("utf-8")
            kb, twin = _STR_KEY + raw_key, _BYTES_KEY + raw_key
        else:
            kb = _KEY + encode_key(key)
            twin = _twin(kb)
        raw = backend.get(kb)
        if raw is not None:
            if len(raw) != _ENTRY_BYTES:
                self._live(kb)  # raises, naming the record
            entry = _unpack_entry(raw)
            if not entry[1] & F_TOMBSTONE:
                return kb, entry[2]
        twin_d = None if twin is None or twin not in backend else self._live(twin)
        if twin_d is None:
            return kb, None
        assert twin is not None
        warnings.warn(
            f"DedupStore: {key!r} is stored as {decode_key(twin[1:])!r}; str and bytes keys are two keys "
            "(as in MemoryStore), and this lookup by the other type will stop finding it",
            DeprecationWarning,
            stacklevel=3,
        )
        return twin, twin_d

    def _next_seq(self) -> int:
        """Take the next sequence number (recorded before the entry that carries it)."""
        seq: int = self._seq + 1
        self._seq = seq
        self.backend[_SEQ_KEY] = _pack_seq(seq)
        return seq

    def _load(self, capacity: int) -> None:
        """Rebuild the Bloom filter and the counters from the backend (one scan)."""
        refs_digests = []
        n_keys = n_blobs = n_refs = logical = unique = stored = 0
        for k in list(self.backend.keys()):
            tag = k[:1]
            if tag == _KEY:
                n_keys += self._live(k) is not None
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
        data = serialize(value)
        d = digest(data)
        backend = self.backend
        with self._lock:
            kb, old = self._resolve(key)
            self._puts += 1
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
            backend[kb] = ENTRY.pack(self._next_seq(), 0, d)
            if old is None:
                self._n_keys += 1
            else:
                self._release(old)
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
        """Remove ``key`` (a tombstone with the next sequence number); its blob goes with its
        last reference. ``KeyError`` if absent."""
        with self._lock:
            kb, old = self._resolve(key)
            if old is None:
                raise KeyError(key)
            self.backend[kb] = ENTRY.pack(self._next_seq(), F_TOMBSTONE, old)
            self._n_keys -= 1
            self._release(old)

    def gc(self) -> dict[str, int]:
        """Recount references from the key index, and remove every unreferenced blob.

        Also repairs what a crash between two writes can leave behind (orphan
        blobs, counts that are too high) and drops the tombstones of deleted
        keys. Returns ``{"blobs_removed", "bytes_freed", "refcounts_fixed",
        "tombstones_removed"}``.
        """
        with self._lock:
            backend = self.backend
            counts: dict[bytes, int] = {}
            blobs: list[bytes] = []
            entries: dict[bytes, tuple[int, int, int]] = {}
            tombstones = 0
            for k in list(backend.keys()):
                tag = k[:1]
                if tag == _KEY:
                    live = self._live(k)
                    if live is None:
                        del backend[k]
                        tombstones += 1
                    else:
                        counts[live] = counts.get(live, 0) + 1
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
            return {
                "blobs_removed": removed,
                "bytes_freed": freed,
                "refcounts_fixed": fixed,
                "tombstones_removed": tombstones,
            }

    # ---------------------------------------------------------------- reads --

    def get(self, key: str | bytes) -> Any:
        """The value stored under ``key`` (verified against its digest); ``KeyError`` if absent."""
        _kb, d = self._resolve(key)
        if d is None:
            raise KeyError(key)
        frame = self.backend.get(_BLOB + d)
        if frame is None:
            raise CorruptDataError(f"DedupStore: key {key!r} names blob {d.hex()}, which is missing")
        return self.engine.decompress(frame, expected_digest=d)

    def get_digest(self, key: str | bytes) -> bytes:
        """The content digest ``key`` points at; ``KeyError`` if absent."""
        _kb, d = self._resolve(key)
        if d is None:
            raise KeyError(key)
        return d

    @property
    def seq(self) -> int:
        """The last sequence number given to a put or delete (0 for a new store)."""
        return self._seq

    def sequence(self, key: str | bytes) -> int:
        """The sequence number of the last put or delete of ``key``; ``KeyError`` if never written (or gc'd)."""
        raw = self.backend.get(_KEY + encode_key(key))
        if raw is None:
            raise KeyError(key)
        seq: int = ENTRY.unpack(raw)[0]
        return seq

    def refcount(self, content_digest: bytes) -> int:
        """References to a blob (0 when unknown or unreferenced)."""
        entry = self.backend.get(_REF + bytes(content_digest))
        return 0 if entry is None else _unpack(entry)[0]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (str, bytes)):
            return False
        return self._resolve(key)[1] is not None

    def __len__(self) -> int:
        return self._n_keys

    def keys(self, *, typed: bool = False) -> Iterator[Any]:
        """Every live key (in backend order): as bytes (str keys UTF-8 encoded), or with
        ``typed=True`` as the ``str`` or ``bytes`` it was stored under."""
        for k in list(self.backend.keys()):
            if k[:1] == _KEY and self._live(k) is not None:
                key = decode_key(bytes(k[1:]))
                yield key if typed or isinstance(key, bytes) else key.encode("utf-8")

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

