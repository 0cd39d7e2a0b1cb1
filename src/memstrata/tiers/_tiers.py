"""``HotTier`` (RAM) and ``WarmTier`` (records and frames on a backend)."""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Iterator
from typing import Any

from memstrata._native.eviction import DEFAULT_POLICY
from memstrata.tiers._backend import Backend

__all__ = [
    "COLD",
    "ENTRY",
    "F_TOMBSTONE",
    "HOT",
    "TIER_NAMES",
    "WARM",
    "HotFrame",
    "HotTier",
    "WarmTier",
    "decode_key",
    "encode_key",
    "inline_frame",
    "pack_blob",
    "pack_seq",
    "tier_number",
    "unpack_blob",
    "unpack_entry",
]

HOT, WARM, COLD = 0, 1, 2
TIER_NAMES = ("hot", "warm", "cold")


def tier_number(tier: int | str) -> int:
    """``0``/``"hot"``, ``1``/``"warm"``, ``2``/``"cold"`` -> the tier number."""
    if isinstance(tier, str):
        if tier in TIER_NAMES:
            return TIER_NAMES.index(tier)
    elif isinstance(tier, int) and not isinstance(tier, bool) and 0 <= tier <= 2:
        return tier
    raise ValueError(f"tier: expected one of 'hot', 'warm', 'cold' (or 0, 1, 2), got {tier!r}")

# per-entry RAM the hot tier charges on top of the value's bytes (key, slot, order)
HOT_ENTRY_OVERHEAD = 96


class HotFrame(bytes):
    """A frame held by the hot tier (values kept as frames rather than msgpack bytes)."""

    __slots__ = ()


class HotTier:
    """RAM tier bounded in bytes, on :class:`memstrata.Cache`.

    Values are msgpack bytes (records) or :class:`HotFrame` (arrays, lossy
    values). ``on_demote(key)`` is called for each key evicted by capacity
    pressure; the tiered storage keeps a durable copy of every hot key on the
    warm or cold tier, so an eviction loses nothing.

    With ``clock``, the cache keeps each entry's last access (a put or a hit of
    ``get``) in an array by slot, read by ``idle`` and ``access_time``: the
    per-key bookkeeping costs 8 bytes per slot, no dict entry. The cache's
    slot arrays grow with the entries held (``Cache``), so ``max_bytes`` costs
    nothing until it is used. RAM per entry: the key and value objects, the
    cache's key table entry (~30-60 bytes, a dict) and about 50-80 bytes of
    slot arrays (keys, values, free list, weight, access time, the policy's
    queues and sketch); ``ram_bytes()`` adds them up.

    >>> hot = HotTier(max_bytes=1000)
    >>> hot.put("a", b"\\x81\\xa1x\\x01")
    >>> hot.get("a"), "a" in hot, len(hot)
    (b'\\x81\\xa1x\\x01', True, 1)
    """

    def __init__(
        self,
        max_bytes: int,
        *,
        policy: str = DEFAULT_POLICY,
        max_items: int | None = None,
        on_demote: Callable[[Any], object] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        from memstrata._native.cache import Cache

        if max_bytes < 0:
            raise ValueError(f"max_bytes: expected a non-negative integer, got {max_bytes!r}")
        self.max_bytes = int(max_bytes)
        self._on_demote = on_demote
        self.demotions = 0
        if max_items is None:  # every entry is charged at least the overhead
            max_items = self.max_bytes // HOT_ENTRY_OVERHEAD + 1
        self._cache = Cache(
            max(1, int(max_items)),
            policy=policy,
            max_bytes=max(1, self.max_bytes),
            weigher=_weigh,
            on_evict=self._evicted,
            clock=clock,
        )
        self.get = self._cache.get  # fast path: no extra Python frame
        self.holds = self._cache.__contains__  # ``key in tier`` with no Python frame (the write path asks twice)

    def _evicted(self, key: Any, value: Any) -> None:
        self.demotions += 1
        if self._on_demote is not None:
            self._on_demote(key)

    def put(self, key: Any, value: bytes, pin: bool = False) -> None:
        if self.max_bytes == 0 and not pin:
            return
        self._cache[key] = value
        if pin and key in self._cache:
            self._cache.pin(key)

    def pop(self, key: Any) -> Any:
        cache = self._cache
        if cache.is_pinned(key) if key in cache else False:
            cache.unpin(key)
        return cache.pop(key, None)

    def pin(self, key: Any) -> None:
        if key in self._cache:
            self._cache.pin(key)

    def unpin(self, key: Any) -> None:
        if key in self._cache and self._cache.is_pinned(key):
            self._cache.unpin(key)

    def __contains__(self, key: object) -> bool:
        return key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def keys(self) -> list[Any]:
        return list(self._cache.keys())

    def clear(self) -> None:
        for key in list(self._cache.keys()):
            self.pop(key)

    def idle(self, before: float) -> list[Any]:
        """Keys last put or read at or before ``before`` (needs a ``clock``)."""
        return self._cache.idle(before)

    def access_time(self, key: Any) -> float:
        """The ``clock()`` of ``key``'s last put or read; ``KeyError`` if absent (needs a ``clock``)."""
        return self._cache.access_time(key)

    @property
    def nbytes(self) -> int:
        """Bytes charged: values plus a fixed per-entry overhead."""
        return int(self._cache.info()["bytes"])

    def ram_bytes(self) -> int:
        """RAM the tier holds: its keys' and values' objects plus the cache's tables and arrays.

        O(entries): each object is measured with ``sys.getsizeof``.
        """
        getsizeof = sys.getsizeof
        return self._cache.nbytes + sum(getsizeof(k) + getsizeof(v) for k, v in self._cache.items())

    def info(self) -> dict[str, Any]:
        return self._cache.info()


def _weigh(value: bytes) -> int:
    return len(value) + HOT_ENTRY_OVERHEAD


# ------------------------------------------------------------------ records --
# The index records, shared with memstrata.dedup (public as memstrata.tiers.ENTRY,
# F_TOMBSTONE, encode_key, decode_key: one content-addressed index format).
# entry  b"k" + key    -> seq, flags, content digest (a delete leaves F_TOMBSTONE with a new seq)
#                         [+ b"W" + the frame: the blob's one copy, when this key is its only owner]
# blob   b"a" + digest -> refs, pins, location, stored length, raw length, access time
#                         [+ the owner's encoded key, when the frame is inside the owner's entry]
# data   b"b" + digest -> b"W" + the frame (warm) or b"C" + pack id, offset, length (cold): shared blobs
# meta   b"m" + name   -> value
# A blob written by one key keeps its frame inside that key's entry record (layout 3): a warm read
# is one record read, whose checksum binds the key, the digest and the frame together. A second
# key storing the same content moves the frame to a data record (the blob becomes shared); so does
# a move to the cold tier. Stores written before layout 3 hold only shared blobs and read as they are.
ENTRY = struct.Struct("<QB16s")
BLOB = struct.Struct("<IIBIId")
PACKREF = struct.Struct("<IQI")
F_TOMBSTONE = 1
F_PINNED = 2
K, A, B, M = b"k", b"a", b"b", b"m"
SEQ_KEY = M + b"seq"
pack_seq = struct.Struct("<Q").pack  # the value of SEQ_KEY: the store's last sequence number
#: The tag byte of a warm frame (b"W"), inline in its owner's entry or first in its blob's data record.
WARM_TAG = 0x57
OWNER = 6  # index of the owner's encoded key in a blob's field list (b"" for a shared blob)


def pack_blob(info: list[Any]) -> bytes:
    """A blob record from its fields ``[refs, pins, location, stored, raw, access time, owner]``."""
    return BLOB.pack(*info[:OWNER]) + info[OWNER]


def unpack_blob(raw: bytes) -> list[Any]:
    """The fields of a blob record (:func:`pack_blob`); a record without an owner has ``b""``."""
    return [*BLOB.unpack_from(raw), bytes(raw[BLOB.size :])]


def unpack_entry(raw: bytes) -> tuple[int, int, bytes]:
    """``(seq, flags, digest)`` of an entry record, with or without an inline frame."""
    return ENTRY.unpack_from(raw)


def inline_frame(raw: bytes | None, d: bytes) -> bytes | None:
    """The frame inside entry record ``raw`` when it holds blob ``d``'s frame, else None."""
    if raw is None or len(raw) <= ENTRY.size or raw[ENTRY.size] != 0x57 or raw[9:25] != d:  # 0x57: b"W"
        return None
    return raw[ENTRY.size + 1 :]


def warm_record(frame: bytes) -> bytes:
    return b"W" + frame


def cold_record(ref: tuple[int, int, int]) -> bytes:
    return b"C" + PACKREF.pack(*ref)


def encode_key(key: Any) -> bytes:
    """``str`` keys as ``s`` + UTF-8, ``bytes`` keys as ``b`` + bytes."""
    t = type(key)
    if t is str:
        return b"s" + key.encode("utf-8")
    if t is bytes:
        return b"b" + key
    if isinstance(key, str):
        return b"s" + str(key).encode("utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return b"b" + bytes(key)
    raise TypeError(f"key: expected str or bytes, got {t.__name__}")


def decode_key(kb: bytes) -> str | bytes:
    """The key :func:`encode_key` encoded."""
    return kb[1:].decode("utf-8") if kb[:1] == b"s" else bytes(kb[1:])


class WarmTier:
    """Warm frames plus the index of every tier, as records on a :class:`Backend`.

    The default backend is one SQLite file in WAL mode. All records of one
    mutation are written in one atomic ``apply``.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._get_pair = getattr(backend, "get_pair", None)
        #: ``get_tagged(key, head, tag, prefix, start, length)``: the backend's (see ``LogReads.get_tagged``), else
        #: the same from two plain reads
        self.get_tagged = getattr(backend, "get_tagged", None) or self._tagged_by_pair

    def entry(self, kb: bytes) -> tuple[int, int, bytes] | None:
        raw = self.backend.get(K + kb)
        return None if raw is None else unpack_entry(raw)

    def blob(self, d: bytes) -> list[Any] | None:
        raw = self.backend.get(A + d)
        return None if raw is None else unpack_blob(raw)

    def payload(self, d: bytes, info: list[Any] | None = None) -> bytes | None:
        """The frame (warm) or packed pack reference (cold), without its tag; None when the blob has no data.

        An owned blob's frame is read from its owner's entry, which must name
        the blob (``info``: the blob's fields when the caller has them).
        """
        raw = self.backend.get(B + d)
        if raw is not None:
            return raw[1:]
        if info is None:
            info = self.blob(d)
        if info is None or not info[OWNER]:
            return None
        return inline_frame(self.backend.get(K + info[OWNER]), d)

    def read_key(self, kb: bytes) -> tuple[bytes | None, bytes | None]:
        """``(entry record, tagged data record)`` of a key: one record read when the entry holds its frame."""
        pair = self._get_pair
        if pair is not None:
            # the digest sits at bytes 9..25 of the entry record; an entry with its frame needs no second record
            return pair(K + kb, B, 9, 16, ENTRY.size)
        entry = self.backend.get(K + kb)
        if entry is None:
            return None, None
        if len(entry) > ENTRY.size:
            return entry, entry[ENTRY.size :]
        return entry, self.backend.get(B + entry[9:25])

    def read_warm(self, kb: bytes) -> tuple[bytes | None, bytes | None]:
        """``(entry record, warm frame)`` of a key; the frame is None unless its data record is tagged warm."""
        return self.get_tagged(K + kb, ENTRY.size, WARM_TAG, B, 9, 16)  # the digest sits at bytes 9..25 of the entry

    def _tagged_by_pair(
        self, key: bytes, head: int, tag: int, prefix: bytes, start: int, length: int
    ) -> tuple[bytes | None, bytes | None]:
        first = self.backend.get(key)
        if first is None:
            return None, None
        if len(first) > head:
            return (first[:head], first[head + 1 :]) if first[head] == tag else (first, None)
        second = self.backend.get(prefix + first[start : start + length])
        return first, second[1:] if second is not None and second[:1] == bytes((tag,)) else None

    def entries(self) -> Iterator[tuple[bytes, tuple[int, int, bytes]]]:
        for k, v in self.backend.scan(K):
            yield bytes(k[1:]), unpack_entry(v)

    def entries_checked(self) -> tuple[list[tuple[bytes, tuple[int, int, bytes]]], list[tuple[bytes, str]]]:
        """``(entries, damaged)``: every intact entry, and ``(key, error)`` of each damaged one the backend can name."""
        scan = getattr(self.backend, "scan_checked", None)
        if scan is None:
            return list(self.entries()), []
        found, damaged = scan(K)
        return [(bytes(k[1:]), unpack_entry(v)) for k, v in found], [(bytes(k[1:]), e) for k, e in damaged]

    def blobs(self) -> Iterator[tuple[bytes, list[Any]]]:
        for k, v in self.backend.scan(A):
            yield bytes(k[1:]), unpack_blob(v)

    def seq(self) -> int:
        raw = self.backend.get(SEQ_KEY)
        return 0 if raw is None else struct.unpack("<Q", raw)[0]
