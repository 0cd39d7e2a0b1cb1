"""Reads of :class:`TieredStorage`: hot, warm and cold lookups, and the promotions they earn."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from memstrata._native.hashing import count_hit as count_hit_compiled
from memstrata._native.hashing import hash_key
from memstrata.codecs import NOT_QUICK, decode, decode_quick, deserialize
from memstrata.errors import CorruptDataError, MemstrataError
from memstrata.tiers import _rules
from memstrata.tiers._state import StorageState
from memstrata.tiers._tiers import (
    COLD,
    ENTRY,
    F_TOMBSTONE,
    PACKREF,
    TIER_NAMES,
    WARM,
    WARM_TAG,
    B,
    HotFrame,
    K,
    decode_key,
    encode_key,
)

log = logging.getLogger("memstrata.store")

__all__ = ["HIT_SLOTS", "ReadMixin", "count_hit"]

#: One-byte access counters in the promotion sketch (see :func:`count_hit`): 64 KiB.
HIT_SLOTS = 1 << 16
HIT_MASK = HIT_SLOTS - 1
ENTRY_SIZE = ENTRY.size


def count_hit(counts: bytearray, name: bytes) -> int:
    """Accesses of ``name`` (a key, or a cold blob's digest) since the last migration pass, this one included.

    Counted in a fixed sketch ``counts`` of one-byte counters (two per name,
    the smaller one read), not a dict per name: RAM stays flat however many
    keys are read. Counts saturate at 255 and may come out high when two
    names share both counters (other names' reads add to shared ones); a
    count only decides when a promotion is due. The slots come from the
    stable :func:`~memstrata._native.hashing.hash_key`, not ``hash()``, so
    the same reads promote the same keys in every process. The readable twin
    of ``memstrata._native.hashing.count_hit``, which the reads call.
    """
    h = hash_key(name)
    i, j = h & HIT_MASK, (h >> 16) & HIT_MASK
    a, b = counts[i], counts[j]
    if a < 255:
        counts[i] = a + 1
    if b < 255:
        counts[j] = b + 1
    return (a if a < b else b) + 1


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
        kb = b"s" + key.encode("utf-8") if type(key) is str else encode_key(key)  # encode_key, inline for str
        promote = False
        with self._lock:
            # WarmTier.read_warm, without its frame: the entry and, after its tag, its warm frame in one read
            entry, warm = self.warm.get_tagged(K + kb, ENTRY_SIZE, WARM_TAG, B, 9, 16)
            if warm is not None and entry is not None and not entry[8] & F_TOMBSTONE:
                frame, loc, d = warm, WARM, entry[9:25]  # one round trip for warm reads
            else:
                frame, loc, d = self.read_frame(key)
            if not self.read_only and not self._closed:  # the access bookkeeping, under the same lock hold
                now = self.clock()
                touched = self._touched
                touched[d] = now
                if len(touched) >= _rules.TOUCHED_MAX:
                    self._touch(d, now)  # saves the pending access times
                if loc == COLD:
                    promote = count_hit_compiled(self._hit_counts, d) >= self.promote_cold_hits
                else:
                    promote = count_hit_compiled(self._hit_counts, kb) >= self.promote_warm_hits and self.hot.max_bytes > 0
        value = decode_quick(frame)  # outside the lock: readers decode in parallel
        if value is NOT_QUICK:
            value = self.decode_frame(frame)
        if promote:
            try:
                self._promote(key, kb, d, loc, value, frame)
            except (MemstrataError, OSError) as exc:  # a promotion is a write: it never fails the read
                self.counters["promotion_errors"] += 1
                log.warning("memstrata: promotion of %r skipped (%s)", key, exc)
        return value, loc

    def _forget_hits(self, name: bytes) -> None:
        h = hash_key(name)
        self._hit_counts[h & HIT_MASK] = self._hit_counts[(h >> 16) & HIT_MASK] = 0

    def _promote(self, key: Any, kb: bytes, d: bytes, loc: int, value: Any, frame: bytes) -> None:
        """Move a blob read often enough up one tier: cold -> warm, or a warm key into the hot tier."""
        with self._lock:
            if self._closed:
                return
            if loc == COLD:
                if self._pins_of(d) == 0:
                    self._move_blob(d, WARM)
                    self._forget_hits(d)
                    self.counters["cold_to_warm"] += 1
                    self.counters["promotions"] += 1
            elif self._still_points_at(kb, d):
                self.hot.put(key, self._hot_value(value, frame))
                if key in self.hot:
                    self._forget_hits(kb)
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

