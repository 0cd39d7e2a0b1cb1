"""``TieredStorage``: hot RAM, warm backend, cold packs, and the rules that move blobs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from memstrata._native.eviction import DEFAULT_POLICY
from memstrata._native.hashing import digest
from memstrata.codecs import read_header
from memstrata.errors import MemstrataError
from memstrata.tiers._backend import Backend, MemoryBackend
from memstrata.tiers._cold import ColdTier
from memstrata.tiers._counts import load_counts, save_counts
from memstrata.tiers._log import LogBackend
from memstrata.tiers._maintenance import MaintenanceMixin
from memstrata.tiers._native_writes import NativeWritesMixin
from memstrata.tiers._plan import WritePlanMixin
from memstrata.tiers._reads import HIT_SLOTS, ReadMixin
from memstrata.tiers._rules import TOUCHED_MAX, RulesMixin
from memstrata.tiers._tiers import (
    COLD,
    ENTRY,
    F_PINNED,
    F_TOMBSTONE,
    HOT,
    SEQ_KEY,
    WARM,
    A,
    HotTier,
    K,
    WarmTier,
    encode_key,
    pack_blob,
    pack_seq,
    tier_number,
)

__all__ = ["TieredStorage", "tier_number"]

log = logging.getLogger("memstrata.store")

_TIERS = {"hot": HOT, "warm": WARM, "cold": COLD}
_ENTRY_PACK = ENTRY.pack
_FLAG_BYTES = [bytes([f]) for f in range(F_TOMBSTONE + F_PINNED + 1)]  # an entry's flags byte, by value
_U32 = 0xFFFFFFFF  # a blob record's raw length is a u32



class TieredStorage(NativeWritesMixin, WritePlanMixin, ReadMixin, RulesMixin, MaintenanceMixin):
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
        self._log = self.backend if isinstance(self.backend, LogBackend) else None  # the write path's shortcut
        self._log_waits = self._log is None or self._log.durability != "full"  # False: group commit (_apply_batch)
        self.cold, self.clock, self.read_only = cold, clock, read_only
        # the migration rules (_rules.py)
        self.hot_idle_seconds, self.warm_idle_seconds = hot_idle_seconds, warm_idle_seconds
        self.warm_max_bytes = warm_max_bytes
        self.promote_cold_hits = int(promote_cold_hits)
        self.promote_warm_hits = int(promote_warm_hits)
        self.compact_dead_ratio = float(compact_dead_ratio)
        self._lock = threading.RLock()
        # the hot cache keeps each key's last access by slot (HotTier.idle), no dict per key
        self.hot = HotTier(hot_max_bytes, policy=eviction_policy, on_demote=self._hot_evicted, clock=clock)
        self._touched: dict[bytes, float] = {}  # digest -> last access, not yet persisted
        self._hit_counts = bytearray(HIT_SLOTS)  # accesses since the last pass (memstrata.tiers._reads.count_hit)
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
        self._counts_seq = -1  # the log's seq when the counters were last saved (see _counts.py)
        if not load_counts(self):
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
            refs, _pins, loc, slen, rlen, _atime, _owner = info
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
        self.counters["demotions"] += 1
        self.counters["capacity_demotions"] += 1

    # -------------------------------------------------------------- writes --

    def _next_seq(self, puts: dict[bytes, bytes]) -> int:
        seq = self._seq + 1
        puts[SEQ_KEY] = pack_seq(seq)
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
        t = _TIERS.get(tier) if type(tier) is str else None
        if t is None:
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
        d = content_digest if type(content_digest) is bytes else bytes(content_digest)
        if raw_length is None:
            raw_length = read_header(frame).original_length
        with self._lock:
            if self._closed or self.read_only:
                self._check_writable()
            seq = self._seq + 1
            log_ = self._log
            native = type(raw_length) is int and 0 <= raw_length <= _U32 and (t == WARM or self.cold is None)
            new, old_raw = (False, None) if log_ is None or t == HOT or self.hot.holds(key) or not native else (
                log_.entry_if_never_stored(A + d, K + kb))
            if new:
                # new content (no blob record of it): the key cannot hold it, so the rewrite below cannot match;
                # its entry, read once, picks the one-call write that fits (a superseding or a new key's)
                ticket = self._write_native(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, old_raw)
            elif log_ is not None and t != HOT and key not in self.hot:
                # the common rewrite: a key writing again the content it holds, with the same pin (its entry's flags
                # byte and digest as they were), whose frame is inline (b"W", see _plan_same_content) or shared (the
                # entry ends there), is its new entry record and the seq record: refs, pins, location and sizes stay,
                # and the blob's access time joins the ones reads leave (_touched, saved at the next flush)
                flags = F_PINNED if pin else 0
                ticket, old_raw = log_.rewrite(K + kb, 8, _FLAG_BYTES[flags] + d, _ENTRY_PACK(seq, flags, d), b"W",
                                               (SEQ_KEY, pack_seq(seq)), wait=self._log_waits)
                if ticket is not None:
                    self._seq = seq
                    touched = self._touched  # _touch inline: the access time waits for the next flush
                    touched[d] = self.clock()
                    if len(touched) >= TOUCHED_MAX:
                        self._touch(d, touched[d])
                elif native:
                    if old_raw is None:  # absent (_write_native's first case, called at once: a new key's write)
                        ticket = self._write_new(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value)
                    else:
                        ticket = self._write_native(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, old_raw)
                else:
                    ticket = self._write_planned(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, old_raw, False)
            elif log_ is not None and (t != COLD or self.cold is None) and type(raw_length) is int and 0 <= raw_length <= _U32:
                ticket = self._write_new(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value)  # then RAM
            else:
                ticket = self._write_planned(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, None, True)
        if not self._log_waits:  # durability "full": synced outside the lock, shared with other writers (group commit)
            self._wait_durable(ticket)
        return seq

    def _write_planned(
        self, seq: int, key: Any, kb: bytes, frame: bytes, make: Callable[[], bytes] | None, t: int, pin: bool, d: bytes,
        raw_length: int, hot_value: bytes | None, old_raw: bytes | None, read: bool,
    ) -> int | None:
        """The general write (under the lock): plan the batch, apply it, commit it in RAM; a ticket as ``_apply_batch``.

        ``read=False``: ``old_raw`` is the key's entry record (None: absent), read already by the caller.
        """
        puts: dict[bytes, bytes] = {}
        commit = self._plan_write(puts, seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, old_raw, read)
        puts[SEQ_KEY] = pack_seq(seq)
        log_ = self._log
        if log_ is not None:  # a segment log: the records as they are (the plan makes bytes), see _apply_batch
            ticket: int | None = log_.append([(0, k, v) for k, v in puts.items()], wait=self._log_waits)
        else:
            ticket = self._apply_batch(puts)
        commit()
        return ticket

    def _apply_batch(self, puts: dict[bytes, bytes], *, freeing: bool = False) -> int | None:
        """Apply a batch (under ``self._lock``); a ticket for :meth:`_wait_durable` when its sync is deferred.

        On a segment log with ``durability="full"`` the batch is written now and
        synced after the caller releases the lock, so writers in other threads
        share one fdatasync (group commit); a write still returns only once it
        is on stable storage. Until then other threads may already read it.
        """
        backend = self.backend
        if isinstance(backend, LogBackend):
            seq = backend.apply(puts, (), freeing=freeing, wait=backend.durability != "full")
            return None if backend.durability != "full" else seq
        if freeing:
            self._apply_freeing(puts)
        else:
            backend.apply(puts)
        return None

    def _wait_durable(self, ticket: int | None) -> None:
        if ticket is not None:
            cast(LogBackend, self.backend).sync_through(ticket)

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
            puts[SEQ_KEY] = pack_seq(seq)
            ticket = self._apply_batch(puts)
            for commit in commits:
                commit()
        self._wait_durable(ticket)
        return seq

    def delete(self, key: str | bytes) -> int:
        """Record a tombstone for ``key`` (space is reclaimed by :meth:`gc`); ``KeyError`` if absent."""
        return self.delete_many((key,))[0]

    def delete_many(self, keys: Iterable[str | bytes], *, missing_ok: bool = False) -> tuple[int, int]:
        """Tombstones for ``keys`` in one batch: all are deleted, or (error, crash) none; see ``MemoryStore.delete_many``.

        Returns ``(last sequence number, keys deleted)``.
        """
        with self._lock:
            self._check_writable()
            puts: dict[bytes, bytes] = {}
            seq = self._seq
            infos: dict[bytes, list[Any] | None] = {}  # blob records as they will be after the batch
            done: list[tuple[str | bytes, list[Any] | None]] = []  # each key with its blob as its delete left it
            seen: set[bytes] = set()
            for key in keys:
                kb = encode_key(key)
                if kb in seen:
                    continue
                old = self.warm.entry(kb)
                if old is None or old[1] & F_TOMBSTONE:
                    if missing_ok:
                        continue
                    raise KeyError(key)
                seen.add(kb)
                seq += 1
                d = old[2]
                info = infos[d] if d in infos else infos.setdefault(d, self.warm.blob(d))
                puts[K + kb] = ENTRY.pack(seq, F_TOMBSTONE, d)  # an owned blob's frame goes with the old entry
                if info is not None:
                    info[0] = max(0, info[0] - 1)
                    if old[1] & F_PINNED:
                        info[1] = max(0, info[1] - 1)
                    puts[A + d] = pack_blob(info)
                done.append((key, None if info is None else list(info)))
            if not done:
                return self._seq, 0
            puts[SEQ_KEY] = pack_seq(seq)
            ticket = self._apply_batch(puts, freeing=True)
            self._seq = seq
            self._n_keys -= len(done)
            self._n_tombstones += len(done)
            for key, after in done:
                if after is not None:
                    self._release_counts(after)
                    self._logical -= after[4]
                self.hot.pop(key)
        self._wait_durable(ticket)
        return seq, len(done)

    def _apply_freeing(self, puts: dict[bytes, bytes], deletes: Iterable[bytes] = ()) -> None:
        """A batch that frees space (a delete, gc): it may use the backend's reserve, so a full disk can be emptied."""
        apply = self.backend.apply
        try:
            apply(puts, deletes, freeing=True)  # type: ignore[call-arg]
        except TypeError:
            apply(puts, deletes)

    # ------------------------------------------------------------- closing --

    def flush(self) -> None:
        """Persist access times and reach a backend flush point."""
        with self._lock:
            if not self.read_only and not self._closed:
                self._flush_touched()
                save_counts(self)
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
                        save_counts(self)
                    except (MemstrataError, OSError) as exc:  # times and counts only: close must work on a full disk
                        log.warning("memstrata: access times or counts not saved at close (%s)", exc)
            finally:
                self._closed = True
                self.hot.clear()
                self.backend.close()

    def __enter__(self) -> TieredStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
