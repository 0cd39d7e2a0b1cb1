"""Reads of :class:`TieredStorage`: hot, warm and cold lookups, and the promotions they earn."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from memstrata.codecs import decode, deserialize
from memstrata.errors import CorruptDataError, MemstrataError
from memstrata.tiers._state import StorageState
from memstrata.tiers._tiers import (
    COLD,
    F_TOMBSTONE,
    PACKREF,
    TIER_NAMES,
    WARM,
    HotFrame,
    decode_key,
    encode_key,
)

log = logging.getLogger("memstrata.store")

__all__ = ["ReadMixin"]


class ReadMixin(StorageState):
    """The read side of :class:`~memstrata.tiers.TieredStorage` (mixed in; shares its state)."""


    def decode_frame(self, frame: bytes) -> Any:
        """Decode a durable frame; a reader that meets a zstd dictionary newer than its view loads it and retries."""
        try:
            return decode(frame)
        except CorruptDataError as exc:
            if "zstd dictionary" in str(exc) and self.refresh_dictionaries is not None and self.refresh_dictionaries():
                return decode(frame)
            raise

    def read_frame(self, key: str | bytes) -> tuple[bytes, int, bytes]:
        """``(frame, tier of the durable copy, digest)`` of ``key``; ``KeyError`` if absent."""
        kb = encode_key(key)
        with self._lock:
            entry = self.warm.entry(kb)
            if entry is None or entry[1] & F_TOMBSTONE:
                raise KeyError(key)
            d = entry[2]
            info = self.warm.blob(d)
            payload = None if info is None else self.warm.payload(d, info)
            if info is None or payload is None:
                raise CorruptDataError(f"TieredStorage: key {key!r} names blob {d.hex()}, which is missing")
            if info[2] == COLD:
                if self.cold is None:
                    raise CorruptDataError(f"TieredStorage: key {key!r} is on the cold tier, but no cold tier is open")
                frame = self.cold.read(PACKREF.unpack(payload), d)
            else:
                frame = payload
            return frame, info[2], d

    def read(self, key: str | bytes) -> tuple[Any, str]:
        """``(value, tier name)``; ``KeyError`` if absent, ``CorruptDataError`` on damage."""
        v = self.hot.get(key)  # a hit stamps the key's access time in the cache
        if v is not None:
            return self.decode_hot(v), "hot"
        value, loc = self.read_durable(key)
        return value, TIER_NAMES[loc]

    @staticmethod
    def decode_hot(v: bytes) -> Any:
        if type(v) is HotFrame:
            return decode(v)
        return deserialize(v)

    def read_durable(self, key: str | bytes) -> tuple[Any, int]:
        """``(value, tier number)`` from the warm or cold tier, verified; the hot tier is not consulted.

        The store's read path calls this after its own hot-tier lookup; ``KeyError`` when absent.
        """
        kb = encode_key(key)
        with self._lock:
            entry, record = self.warm.read_key(kb)
            if entry is not None and record is not None and record[:1] == b"W" and not entry[8] & F_TOMBSTONE:
                frame, loc, d = record[1:], WARM, entry[9:25]  # one round trip for warm reads
            else:
                frame, loc, d = self.read_frame(key)
        value = self.decode_frame(frame)  # outside the lock: readers decode in parallel
        if self.read_only:
            return value, loc
        try:
            self._after_read(key, kb, d, loc, value, frame)
        except (MemstrataError, OSError) as exc:  # a promotion is a write: it never fails the read
            self.counters["promotion_errors"] += 1
            log.warning("memstrata: promotion of %r skipped (%s)", key, exc)
        return value, loc

    def _after_read(self, key: Any, kb: bytes, d: bytes, loc: int, value: Any, frame: bytes) -> None:
        """Access bookkeeping after a durable read: hit counts and promotions."""
        with self._lock:
            if self._closed:
                return
            now = self.clock()
            self._touched[d] = now
            hits = self._hits
            if loc == COLD:
                n = hits.get(d, 0) + 1
                hits[d] = n
                if n >= self.promote_cold_hits and self._pins_of(d) == 0:
                    self._move_blob(d, WARM)
                    hits.pop(d, None)
                    self.counters["cold_to_warm"] += 1
                    self.counters["promotions"] += 1
            else:
                n = hits.get(kb, 0) + 1
                hits[kb] = n
                if n >= self.promote_warm_hits and self.hot.max_bytes and self._still_points_at(kb, d):
                    self.hot.put(key, self._hot_value(value, frame))
                    if key in self.hot:
                        hits.pop(kb, None)
                        self.counters["warm_to_hot"] += 1
                        self.counters["promotions"] += 1

    def _still_points_at(self, kb: bytes, d: bytes) -> bool:
        """True when ``kb`` is live and still names content ``d`` (no write slipped in since the read)."""
        entry = self.warm.entry(kb)
        return entry is not None and not entry[1] & F_TOMBSTONE and entry[2] == d

    @staticmethod
    def _hot_value(value: Any, frame: bytes) -> bytes:
        import numpy as np

        from memstrata.codecs import serialize

        if isinstance(value, np.ndarray) or isinstance(value, (bytes, bytearray)):
            return HotFrame(frame)
        try:
            return serialize(value)
        except (TypeError, ValueError):
            return HotFrame(frame)

    def _pins_of(self, d: bytes) -> int:
        info = self.warm.blob(d)
        return 0 if info is None else info[1]

    def tier_of(self, key: str | bytes) -> str:
        """Name of the tier ``read`` would serve ``key`` from; ``KeyError`` if absent."""
        if key in self.hot:
            return "hot"
        with self._lock:
            entry = self.warm.entry(encode_key(key))
            if entry is None or entry[1] & F_TOMBSTONE:
                raise KeyError(key)
            info = self.warm.blob(entry[2])
            return TIER_NAMES[WARM if info is None else info[2]]

    def __contains__(self, key: object) -> bool:
        if key in self.hot:
            return True
        try:
            kb = encode_key(key)
        except TypeError:
            return False
        entry = self.warm.entry(kb)
        return entry is not None and not entry[1] & F_TOMBSTONE

    def __len__(self) -> int:
        return self._n_keys

    def keys(self) -> Iterator[str | bytes]:
        """Every live key (in key order)."""
        with self._lock:
            items = list(self.warm.entries())
        for kb, (_seq, flags, _d) in items:
            if not flags & F_TOMBSTONE:
                yield decode_key(kb)

    @property
    def seq(self) -> int:
        """Sequence number of the last mutation."""
        return self._seq

