"""``TieredStorage``: hot RAM, warm backend, cold packs, and the rules that move blobs."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from memstrata._native.eviction import DEFAULT_POLICY
from memstrata.codecs import decode, deserialize
import logging

from memstrata.errors import CorruptDataError, MemstrataError
from memstrata.tiers._backend import Backend, MemoryBackend
from memstrata.tiers._cold import ColdTier, pack_name
from memstrata.tiers._tiers import (
    A,
    B,
    BLOB,
    COLD,
    ENTRY,
    F_PINNED,
    F_TOMBSTONE,
    HOT,
    K,
    PACKREF,
    SEQ_KEY,
    TIER_NAMES,
    WARM,
    HotFrame,
    HotTier,
    WarmTier,
    cold_record,
    decode_key,
    warm_record,
    encode_key,
)

__all__ = ["TieredStorage", "tier_number"]

log = logging.getLogger("memstrata.store")


def tier_number(tier: int | str) -> int:
    """``0``/``"hot"``, ``1``/``"warm"``, ``2``/``"cold"`` -> the tier number."""
    if isinstance(tier, str):
        if tier in TIER_NAMES:
            return TIER_NAMES.index(tier)
    elif isinstance(tier, int) and not isinstance(tier, bool) and 0 <= tier <= 2:
        return tier
    raise ValueError(f"tier: expected one of 'hot', 'warm', 'cold' (or 0, 1, 2), got {tier!r}")


class TieredStorage:
    """Blobs on three tiers, moved by access rules, never lost in between.

    Every key has a durable copy on the warm (backend) or cold (packs) tier;
    the hot tier is a bounded RAM copy in front of them (write-through), so a
    hot eviction is a demotion that writes nothing. Identical contents are
    stored once (by 128-bit digest) with a reference count.

    Parameters
    ----------
    backend : Backend, optional
        Warm frames and the index (a :class:`MemoryBackend` by default).
    cold : ColdTier, optional
        Pack files; without one, blobs never go colder than warm.
    hot_max_bytes : int
        RAM bound of the hot tier.
    eviction_policy : str
        Eviction policy of the hot tier, one of ``memstrata._native.eviction.POLICIES``
        (default ``DEFAULT_POLICY``).
    hot_idle_seconds, warm_idle_seconds : float or None
        Demote hot -> warm / warm -> cold after this long without access.
    warm_max_bytes : int, optional
        Demote the least recently used warm blobs to cold above this size.
    promote_cold_hits, promote_warm_hits : int
        Accesses (since the last migration pass) that promote cold -> warm and
        warm -> hot.
    migration_interval_seconds : float, optional
        Run :meth:`run_migrations` in a background thread at this interval.
    clock : callable
        Seconds as a float (``time.time``); tests inject a fake clock.

    Examples
    --------
    >>> from memstrata.codecs import get_codec
    >>> now = [0.0]
    >>> ts = TieredStorage(hot_max_bytes=1 << 20, hot_idle_seconds=60, clock=lambda: now[0])
    >>> ts.write("a", get_codec("zstd").encode({"x": 1}))  # returns the sequence number
    1
    >>> ts.read("a")
    ({'x': 1}, 'hot')
    >>> now[0] = 120.0; ts.run_migrations()["hot_to_warm"]
    1
    >>> ts.read("a")[1]
    'warm'
    >>> ts.close()
    """

    def __init__(
        self,
        backend: Backend | None = None,
        cold: ColdTier | None = None,
        *,
        hot_max_bytes: int = 64 << 20,
        eviction_policy: str = DEFAULT_POLICY,
        hot_idle_seconds: float | None = None,
        warm_idle_seconds: float | None = None,
        warm_max_bytes: int | None = None,
        promote_cold_hits: int = 2,
        promote_warm_hits: int = 5,
        migration_interval_seconds: float | None = None,
        compact_dead_ratio: float = 0.3,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
        refresh_dictionaries: Callable[[], bool] | None = None,
    ) -> None:
        self.refresh_dictionaries = refresh_dictionaries
        self.backend: Backend = MemoryBackend() if backend is None else backend
        self.warm = WarmTier(self.backend)
        self.cold = cold
        self.clock = clock
        self.read_only = read_only
        self.hot_idle_seconds = hot_idle_seconds
        self.warm_idle_seconds = warm_idle_seconds
        self.warm_max_bytes = warm_max_bytes
        self.promote_cold_hits = int(promote_cold_hits)
        self.promote_warm_hits = int(promote_warm_hits)
        self.compact_dead_ratio = float(compact_dead_ratio)
        self._lock = threading.RLock()
        self.hot = HotTier(hot_max_bytes, policy=eviction_policy, on_demote=self._hot_evicted)
        self._hot_atime: dict[Any, float] = {}
        self._touched: dict[bytes, float] = {}  # digest -> last access, not yet persisted
        self._hits: dict[bytes, int] = {}  # key or digest -> accesses since the last pass
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "promotions",
                "demotions",
                "hot_to_warm",
                "warm_to_cold",
                "cold_to_warm",
                "warm_to_hot",
                "capacity_demotions",
                "migration_passes",
                "migration_errors",
                "compactions",
                "promotion_errors",
            ),
            0,
        )
        self.last_migration_error: str | None = None
        self._forgotten_packs: set[int] = set()  # packs holding blobs dropped by gc(), rewritten by compact()
        self._closed = False
        self._seq = self.warm.seq()
        self._recount()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if migration_interval_seconds and not read_only:
            self._thread = threading.Thread(
                target=self._migration_loop, args=(float(migration_interval_seconds),), name="memstrata-migration", daemon=True
            )
            self._thread.start()

    # ----------------------------------------------------------- counters --

    def _recount(self) -> None:
        """Rebuild the counters from the records (one scan of the index)."""
        n_keys = n_tomb = 0
        logical = 0
        blobs: dict[bytes, list[Any]] = dict(self.warm.blobs())
        for _kb, (_seq, flags, d) in self.warm.entries():
            if flags & F_TOMBSTONE:
                n_tomb += 1
                continue
            n_keys += 1
            info = blobs.get(d)
            if info is not None:
                logical += info[4]
        items = [0, 0, 0]
        stored = [0, 0, 0]
        unique = 0
        n_garbage = 0
        for info in blobs.values():
            refs, _pins, loc, slen, rlen, _atime = info
            if refs == 0:
                n_garbage += 1
                continue
            items[loc] += refs
            stored[loc] += slen
            unique += rlen
        self._n_keys, self._n_tombstones, self._logical = n_keys, n_tomb, logical
        self._items, self._stored, self._unique, self._n_blobs = items, stored, unique, len(blobs) - n_garbage
        self._n_garbage = n_garbage

    def _hot_evicted(self, key: Any) -> None:
        self._hot_atime.pop(key, None)
        self.counters["demotions"] += 1
        self.counters["capacity_demotions"] += 1

    # -------------------------------------------------------------- writes --

    def _next_seq(self, puts: dict[bytes, bytes]) -> int:
        seq = self._seq + 1
        puts[SEQ_KEY] = struct.pack("<Q", seq)
        return seq

    def _check_writable(self) -> None:
        if self._closed:
            raise ValueError("TieredStorage: the store is closed")
        if self.read_only:
            raise PermissionError("TieredStorage: opened read-only")

    def write(
        self,
        key: str | bytes,
        frame: bytes | Callable[[], bytes],
        tier: int | str = HOT,
        pin: bool = False,
        *,
        content_digest: bytes | None = None,
        raw_length: int | None = None,
        hot_value: bytes | None = None,
    ) -> int:
        """Store a frame under ``key`` on ``tier``; returns the mutation's sequence number.

        ``content_digest`` identifies the content for deduplication (default:
        the digest of the frame); ``raw_length`` is the uncompressed size
        (default: the frame's original length); ``hot_value`` is what the hot
        tier holds (msgpack bytes; default: the frame). ``frame`` may be a
        callable that makes the frame: it is called only when the content is
        not stored yet (``content_digest`` and ``raw_length`` are then required).
        """
        from memstrata.codecs import read_header
        from memstrata._native.hashing import digest

        t = tier_number(tier)
        kb = encode_key(key)
        if callable(frame):
            if content_digest is None or raw_length is None:
                raise ValueError("frame: a frame factory needs content_digest and raw_length")
            make: Callable[[], bytes] | None = frame
            frame = b""
        else:
            make = None
            if not isinstance(frame, bytes):
                frame = bytes(frame)
        if content_digest is None:
            content_digest = digest(frame)
        d = bytes(content_digest)
        if raw_length is None:
            raw_length = read_header(frame).original_length
        with self._lock:
            self._check_writable()
            puts: dict[bytes, bytes] = {}
            seq = self._seq + 1
            commit = self._plan_write(puts, seq, key, kb, frame, make, t, pin, d, raw_length, hot_value)
            puts[SEQ_KEY] = struct.pack("<Q", seq)
            self.backend.apply(puts)
            commit()
            return seq

    def write_many(
        self, items: list[tuple[str | bytes, Callable[[], bytes], bytes, int, bytes | None]], tier: int | str = HOT,
        pin: bool = False,
    ) -> int:
        """Write ``(key, frame factory, content digest, raw length, hot value)`` items in one transaction.

        Returns the sequence number of the last one (each item gets its own).
        """
        t = tier_number(tier)
        with self._lock:
            self._check_writable()
            puts: dict[bytes, bytes] = {}
            seq = self._seq
            commits = []
            for key, make, d, raw_length, hot_value in items:
                seq += 1
                commits.append(
                    self._plan_write(puts, seq, key, encode_key(key), b"", make, t, pin, bytes(d), raw_length, hot_value)
                )
            puts[SEQ_KEY] = struct.pack("<Q", seq)
            self.backend.apply(puts)
            for commit in commits:
                commit()
            return seq

    def _get_in(self, puts: dict[bytes, bytes], k: bytes) -> bytes | None:
        """A record as it will be once ``puts`` are applied."""
        v = puts.get(k)
        return self.backend.get(k) if v is None else v

    def _entry_in(self, puts: dict[bytes, bytes], kb: bytes) -> tuple[int, int, bytes] | None:
        raw = self._get_in(puts, K + kb)
        return None if raw is None else ENTRY.unpack(raw)

    def _blob_in(self, puts: dict[bytes, bytes], d: bytes) -> list[Any] | None:
        raw = self._get_in(puts, A + d)
        return None if raw is None else list(BLOB.unpack(raw))

    def _plan_write(
        self,
        puts: dict[bytes, bytes],
        seq: int,
        key: Any,
        kb: bytes,
        frame: bytes,
        make: Callable[[], bytes] | None,
        t: int,
        pin: bool,
        d: bytes,
        raw_length: int,
        hot_value: bytes | None,
    ) -> Callable[[], None]:
        """Add one write's records to ``puts``; returns what to do in RAM once they are committed."""
        now = self.clock()
        old_entry = self._entry_in(puts, kb)
        old: tuple[int, int, bytes] = (0, F_TOMBSTONE, b"") if old_entry is None else old_entry
        old_live = not old[1] & F_TOMBSTONE
        info = self._blob_in(puts, d)
        new_blob = info is None or info[0] == 0 and info[2] == WARM and self._get_in(puts, B + d) is None
        old_info = None
        if old_live and old[2] != d:
            old_info = self._blob_in(puts, old[2])
        elif old_live:
            old_info = None
        if info is None or new_blob:
            if make is not None:
                frame, make = make(), None
            loc = COLD if t == COLD and self.cold is not None else WARM
            if loc == COLD:
                ref = self.cold.append(d, frame)  # type: ignore[union-attr]
                puts[B + d] = cold_record(ref)
            else:
                puts[B + d] = warm_record(frame)
            info = [0, 0, loc, len(frame), int(raw_length), now]
            revived = False
        else:
            revived = info[0] == 0
        refs_delta = 0 if (old_live and old[2] == d) else 1
        pins_delta = int(pin) - (int(bool(old[1] & F_PINNED)) if old_live and old[2] == d else 0)
        info[0] += refs_delta
        info[1] += pins_delta
        info[5] = now
        puts[A + d] = BLOB.pack(*info)
        if old_info is not None:
            old_info[0] -= 1
            if old[1] & F_PINNED:
                old_info[1] -= 1
            puts[A + old[2]] = BLOB.pack(*old_info)
        puts[K + kb] = ENTRY.pack(seq, F_PINNED if pin else 0, d)

        def commit() -> None:
            nonlocal frame, make
            self._seq = max(self._seq, seq)
            self._touched.pop(d, None)
            loc = info[2]
            if refs_delta:
                self._items[loc] += 1
            if info[0] == 1 and refs_delta:
                self._stored[loc] += info[3]
                self._unique += info[4]
                self._n_blobs += 1
                if revived:
                    self._n_garbage -= 1
            if old_live:
                if old[2] == d:
                    self._logical -= info[4]
                elif old_info is not None:
                    self._release_counts(old_info)
                    self._logical -= old_info[4]
            else:
                self._n_keys += 1
                if old_entry is not None:
                    self._n_tombstones -= 1
            self._logical += info[4]
            if t == HOT or key in self.hot:
                self.hot.pop(key)
                self._hot_atime.pop(key, None)
                if t == HOT:
                    if hot_value is None and make is not None:
                        frame = make()
                    self.hot.put(key, HotFrame(frame) if hot_value is None else hot_value, pin)
                    if key in self.hot:
                        self._hot_atime[key] = now

        return commit

    def _release_counts(self, info: list[Any]) -> None:
        """RAM counters after one reference to a blob went (``info`` already decremented)."""
        loc = info[2]
        self._items[loc] -= 1
        if info[0] == 0:
            self._stored[loc] -= info[3]
            self._unique -= info[4]
            self._n_blobs -= 1
            self._n_garbage += 1

    def delete(self, key: str | bytes) -> int:
        """Record a tombstone for ``key`` (space is reclaimed by :meth:`gc`); ``KeyError`` if absent."""
        kb = encode_key(key)
        with self._lock:
            self._check_writable()
            old = self.warm.entry(kb)
            if old is None or old[1] & F_TOMBSTONE:
                raise KeyError(key)
            puts: dict[bytes, bytes] = {}
            seq = self._next_seq(puts)
            info = self.warm.blob(old[2])
            puts[K + kb] = ENTRY.pack(seq, F_TOMBSTONE, old[2])
            if info is not None:
                info[0] = max(0, info[0] - 1)
                if old[1] & F_PINNED:
                    info[1] = max(0, info[1] - 1)
                puts[A + old[2]] = BLOB.pack(*info)
            self._apply_freeing(puts)
            self._seq = seq
            self._n_keys -= 1
            self._n_tombstones += 1
            if info is not None:
                self._release_counts(info)
                self._logical -= info[4]
            self.hot.pop(key)
            self._hot_atime.pop(key, None)
            return seq

    def _apply_freeing(self, puts: dict[bytes, bytes]) -> None:
        """A batch that frees space (a delete): it may use the backend's reserve, so a full disk can be emptied."""
        apply = self.backend.apply
        try:
            apply(puts, (), freeing=True)  # type: ignore[call-arg]
        except TypeError:
            apply(puts)

    # --------------------------------------------------------------- reads --

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
            payload = self.warm.payload(d)
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
        v = self.hot.get(key)
        if v is not None:
            self._hot_atime[key] = self.clock()
            return self.decode_hot(v), "hot"
        value, loc = self._read_durable(key)
        return value, TIER_NAMES[loc]

    @staticmethod
    def decode_hot(v: bytes) -> Any:
        if type(v) is HotFrame:
            return decode(v)
        return deserialize(v)

    def _read_durable(self, key: str | bytes) -> tuple[Any, int]:
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
                        self._hot_atime[key] = now
                        hits.pop(kb, None)
                        self.counters["warm_to_hot"] += 1
                        self.counters["promotions"] += 1

    def _still_points_at(self, kb: bytes, d: bytes) -> bool:
        """True when ``kb`` is live and still names content ``d`` (no write slipped in since the read)."""
        entry = self.warm.entry(kb)
        return entry is not None and not entry[1] & F_TOMBSTONE and entry[2] == d

    @staticmethod
    def _hot_value(value: Any, frame: bytes) -> bytes:
        from memstrata.codecs import serialize

        import numpy as np

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

    # ----------------------------------------------------------- movement --

    def _move_blob(self, d: bytes, dest: int) -> None:
        """Write the blob at ``dest`` and commit the index; the old copy is unreferenced after."""
        info = self.warm.blob(d)
        payload = self.warm.payload(d)
        if info is None or payload is None or info[2] == dest:
            return
        src = info[2]
        if dest == COLD:
            if self.cold is None:
                return
            new_payload = cold_record(self.cold.append(d, payload))
        else:
            from memstrata.codecs import read_header

            frame = self.cold.read(PACKREF.unpack(payload), d)  # type: ignore[union-attr]
            read_header(frame)
            new_payload = warm_record(frame)
        info[2] = dest
        self.backend.apply({A + d: BLOB.pack(*info), B + d: new_payload})
        if info[0]:
            self._items[src] -= info[0]
            self._items[dest] += info[0]
            self._stored[src] -= info[3]
            self._stored[dest] += info[3]

    def migrate(self, key: str | bytes, tier: int | str) -> None:
        """Move ``key`` to ``tier`` now (also pinned keys: an explicit request)."""
        t = tier_number(tier)
        with self._lock:
            self._check_writable()
            frame, loc, d = self.read_frame(key)
            if t == HOT:
                from memstrata.codecs import decode

                self.hot.put(key, self._hot_value(decode(frame), frame))
                if key in self.hot:
                    self._hot_atime[key] = self.clock()
                return
            if key in self.hot:
                self.hot.pop(key)
                self._hot_atime.pop(key, None)
                self.counters["demotions"] += 1
            if t != loc:
                self._move_blob(d, t)
                if t > loc:
                    self.counters["demotions"] += 1
                else:
                    self.counters["promotions"] += 1

    def set_pinned(self, key: str | bytes, pinned: bool) -> None:
        """Pin (never moved by the rules) or unpin ``key``."""
        kb = encode_key(key)
        with self._lock:
            self._check_writable()
            entry = self.warm.entry(kb)
            if entry is None or entry[1] & F_TOMBSTONE:
                raise KeyError(key)
            was = bool(entry[1] & F_PINNED)
            if was != pinned:
                puts: dict[bytes, bytes] = {}
                seq = self._next_seq(puts)
                info = self.warm.blob(entry[2])
                if info is not None:
                    info[1] += 1 if pinned else -1
                    puts[A + entry[2]] = BLOB.pack(*info)
                puts[K + kb] = ENTRY.pack(seq, F_PINNED if pinned else 0, entry[2])
                self.backend.apply(puts)
                self._seq = seq
            if pinned:
                self.hot.pin(key)
            else:
                self.hot.unpin(key)

    def is_pinned(self, key: str | bytes) -> bool:
        entry = self.warm.entry(encode_key(key))
        return entry is not None and not entry[1] & F_TOMBSTONE and bool(entry[1] & F_PINNED)

    def _flush_touched(self) -> None:
        if not self._touched:
            return
        touched, self._touched = self._touched, {}
        puts = {}
        for d, t in touched.items():
            info = self.warm.blob(d)
            if info is not None and t > info[5]:
                info[5] = t
                puts[A + d] = BLOB.pack(*info)
        if puts:
            self.backend.apply(puts)

    def run_migrations(self, now: float | None = None) -> dict[str, int]:
        """Apply the idle and capacity rules once; returns how many moved each way."""
        moved = {"hot_to_warm": 0, "warm_to_cold": 0, "capacity": 0}
        with self._lock:
            if self._closed or self.read_only:
                return moved
            if now is None:
                now = self.clock()
            if self.hot_idle_seconds is not None:
                limit = now - self.hot_idle_seconds
                for key, t in list(self._hot_atime.items()):
                    if t <= limit and not self.is_pinned(key):
                        self.hot.pop(key)
                        self._hot_atime.pop(key, None)
                        moved["hot_to_warm"] += 1
            self._flush_touched()
            if self.cold is not None and (self.warm_idle_seconds is not None or self.warm_max_bytes is not None):
                warm = [(info[5], d, info) for d, info in self.warm.blobs() if info[2] == WARM and info[0] > 0]
                movable = sorted((t, d, i) for t, d, i in warm if i[1] == 0)
                to_move: list[bytes] = []
                if self.warm_idle_seconds is not None:
                    limit = now - self.warm_idle_seconds
                    to_move = [d for t, d, _ in movable if t <= limit]
                if self.warm_max_bytes is not None:
                    chosen = set(to_move)
                    excess = self._stored[WARM] - sum(i[3] for _, d, i in movable if d in chosen) - self.warm_max_bytes
                    for _t, d, info in movable:
                        if excess <= 0:
                            break
                        if d not in chosen:
                            to_move.append(d)
                            chosen.add(d)
                            excess -= info[3]
                            moved["capacity"] += 1
                if to_move:
                    self._move_many_to_cold(to_move)
                    moved["warm_to_cold"] = len(to_move)
            self._hits.clear()
            c = self.counters
            c["hot_to_warm"] += moved["hot_to_warm"]
            c["warm_to_cold"] += moved["warm_to_cold"]
            c["capacity_demotions"] += moved["capacity"]
            c["demotions"] += moved["hot_to_warm"] + moved["warm_to_cold"]
            c["migration_passes"] += 1
        return moved

    def _move_many_to_cold(self, digests: list[bytes], batch: int = 256) -> None:
        cold = self.cold
        assert cold is not None
        for i in range(0, len(digests), batch):
            chunk = digests[i : i + batch]
            puts: dict[bytes, bytes] = {}
            sync, cold.sync = cold.sync, False
            try:
                infos = []
                for d in chunk:
                    info = self.warm.blob(d)
                    frame = self.warm.payload(d)
                    if info is None or frame is None or info[2] != WARM:
                        continue
                    ref = cold.append(d, frame)
                    info[2] = COLD
                    puts[A + d] = BLOB.pack(*info)
                    puts[B + d] = cold_record(ref)
                    infos.append(info)
            finally:
                cold.sync = sync
            if sync:
                cold.sync_active()
            self.backend.apply(puts)  # written and synced at the destination, then the index flips
            for info in infos:
                if info[0]:
                    self._items[WARM] -= info[0]
                    self._items[COLD] += info[0]
                    self._stored[WARM] -= info[3]
                    self._stored[COLD] += info[3]

    def _migration_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.run_migrations()
            except Exception as exc:  # keep running; the error is counted and kept for statistics
                self.counters["migration_errors"] += 1
                self.last_migration_error = f"{type(exc).__name__}: {exc}"

    # --------------------------------------------------------- maintenance --

    def gc(self) -> dict[str, int]:
        """Drop tombstones and unreferenced blobs (warm frames go; cold bytes wait for :meth:`compact`)."""
        with self._lock:
            self._check_writable()
            deletes = [K + kb for kb, (_s, flags, _d) in self.warm.entries() if flags & F_TOMBSTONE]
            n_tomb = len(deletes)
            n_blobs = 0
            for d, info in self.warm.blobs():
                if info[0] == 0:
                    deletes += [A + d, B + d]
                    n_blobs += 1
                    if info[2] == COLD:  # its pack must be rewritten so no byte of it remains
                        payload = self.warm.payload(d)
                        if payload is not None:
                            self._forgotten_packs.add(PACKREF.unpack(payload)[0])
            if deletes:
                self.backend.apply({}, deletes)
            self._recount()
            return {"tombstones_removed": n_tomb, "blobs_removed": n_blobs}

    def compact(self) -> dict[str, int]:
        """:meth:`gc`, then rewrite sealed packs with dead space into new packs and remove them."""
        with self._lock:
            result = self.gc()
            result.update(packs_rewritten=0, packs_removed=0, bytes_reclaimed=0)
            cold = self.cold
            if cold is None:
                self._vacuum()
                return result
            cold.seal()
            live: dict[int, list[tuple[bytes, tuple[int, int, int]]]] = {}
            for d, info in self.warm.blobs():
                if info[2] == COLD and info[0] > 0:
                    payload = self.warm.payload(d)
                    if payload is not None:
                        ref = PACKREF.unpack(payload)
                        live.setdefault(ref[0], []).append((d, ref))
            for pack_id in sorted(cold.pack_ids()):
                if pack_id == cold.active_pack:
                    continue
                size = cold.location.size(pack_name(pack_id))
                blobs = live.get(pack_id, [])
                live_bytes = sum(ref[2] + 24 for _d, ref in blobs)
                if blobs and size and (size - live_bytes) / size < self.compact_dead_ratio and (
                    pack_id not in self._forgotten_packs
                ):
                    continue
                if blobs:
                    puts = {}
                    for d, ref in blobs:
                        frame = cold.read(ref, d)
                        puts[B + d] = cold_record(cold.append(d, frame))
                    cold.sync_active()
                    self.backend.apply(puts)
                    result["packs_rewritten"] += 1
                cold.remove(pack_id)
                result["packs_removed"] += 1
                result["bytes_reclaimed"] += size - live_bytes
            self._forgotten_packs.clear()
            self.counters["compactions"] += 1
            self._vacuum()
            return result

    def _vacuum(self) -> None:
        vacuum = getattr(self.backend, "vacuum", None)
        if vacuum is not None:
            vacuum()

    def verify(self) -> dict[str, Any]:
        """Read and check every frame on every tier; returns a report (never raises on damage)."""
        from memstrata.codecs import decode

        report: dict[str, Any] = {
            "ok": True,
            "keys": 0,
            "blobs": 0,
            "frames_checked": {"hot": 0, "warm": 0, "cold": 0},
            "bad_keys": [],
            "bad_blobs": [],
            "bad_files": [],
            "errors": [],
        }
        with self._lock:
            try:
                entries = list(self.warm.entries())
                blobs = dict(self.warm.blobs())
            except Exception as exc:  # the index itself is unreadable
                report["ok"] = False
                report["bad_files"].append(getattr(self.backend, "path", "backend"))
                report["errors"].append(f"{type(exc).__name__}: {exc}")
                return report
            check = getattr(self.backend, "integrity_check", None)
            if check is not None:
                problems = check()
                if problems:
                    report["bad_files"].append(getattr(self.backend, "path", "backend"))
                    report["errors"] += problems
            bad_digests: set[bytes] = set()
            for d, info in blobs.items():
                if info[0] == 0:
                    continue
                report["blobs"] += 1
                try:
                    payload = self.warm.payload(d)
                    if payload is None:
                        raise CorruptDataError(f"blob {d.hex()} has no data record")
                    if info[2] == COLD:
                        if self.cold is None:
                            raise CorruptDataError(f"blob {d.hex()} is cold but no cold tier is open")
                        ref = PACKREF.unpack(payload)
                        try:
                            frame = self.cold.read(ref, d)
                        except CorruptDataError:
                            report["bad_files"].append(pack_name(ref[0]))
                            raise
                        try:
                            self.decode_frame(frame)
                        except CorruptDataError:
                            report["bad_files"].append(pack_name(ref[0]))
                            raise
                        report["frames_checked"]["cold"] += 1
                    else:
                        self.decode_frame(payload)
                        report["frames_checked"]["warm"] += 1
                except Exception as exc:
                    bad_digests.add(d)
                    report["bad_blobs"].append(d.hex())
                    report["errors"].append(f"{type(exc).__name__}: {exc}")
            for kb, (_seq, flags, d) in entries:
                if flags & F_TOMBSTONE:
                    continue
                report["keys"] += 1
                if d in bad_digests or d not in blobs:
                    report["bad_keys"].append(decode_key(kb))
                    if d not in blobs:
                        report["errors"].append(f"key {decode_key(kb)!r} names a missing blob")
            for key in self.hot.keys():
                v = self.hot._cache.peek(key)
                if v is None:
                    continue
                try:
                    self.decode_hot(v)
                    report["frames_checked"]["hot"] += 1
                except Exception as exc:
                    report["bad_keys"].append(key)
                    report["errors"].append(f"hot {key!r}: {type(exc).__name__}: {exc}")
        report["bad_files"] = sorted(set(map(str, report["bad_files"])))
        report["ok"] = not (report["bad_keys"] or report["bad_blobs"] or report["bad_files"] or report["errors"])
        return report

    def statistics(self) -> dict[str, Any]:
        """Items and bytes per tier, movement counters, the sequence number."""
        hot_info = self.hot.info()
        cold_bytes = self.cold.size_bytes() if self.cold is not None else 0
        return {
            "hot": {"items": hot_info["size"], "bytes": hot_info["bytes"], "max_bytes": self.hot.max_bytes,
                    "hits": hot_info["hits"], "misses": hot_info["misses"], "pinned": hot_info["pinned"]},
            "warm": {"items": self._items[WARM], "bytes": self._stored[WARM]},
            "cold": {"items": self._items[COLD], "bytes": self._stored[COLD], "file_bytes": cold_bytes,
                     "packs": len(self.cold.pack_ids()) if self.cold is not None else 0},
            "keys": self._n_keys,
            "tombstones": self._n_tombstones,
            "unique_blobs": self._n_blobs,
            "garbage_blobs": self._n_garbage,
            "logical_bytes": self._logical,
            "unique_bytes": self._unique,
            "seq": self._seq,
            **self.counters,
            "last_migration_error": self.last_migration_error,
        }

    # ------------------------------------------------------------- closing --

    def flush(self) -> None:
        """Persist access times and reach a backend flush point."""
        with self._lock:
            if not self.read_only and not self._closed:
                self._flush_touched()
            self.backend.flush()

    def close(self) -> None:
        """Stop the migration thread, persist, close the backend. Idempotent."""
        if self._closed:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._closed:
                return
            try:
                if not self.read_only:
                    try:
                        self._flush_touched()
                    except (MemstrataError, OSError) as exc:  # access times only: closing must work on a full disk
                        log.warning("memstrata: access times not saved at close (%s)", exc)
            finally:
                self._closed = True
                self.hot.clear()
                self.backend.close()

    def __enter__(self) -> TieredStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
