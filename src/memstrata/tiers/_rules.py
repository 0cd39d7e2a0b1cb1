"""Movement between tiers: explicit migrations, pins, and the idle and capacity rules."""

from __future__ import annotations

import logging

from memstrata.errors import MemstrataError
from memstrata.tiers._state import StorageState
from memstrata.tiers._tiers import (
    COLD,
    ENTRY,
    F_PINNED,
    F_TOMBSTONE,
    HOT,
    PACKREF,
    WARM,
    A,
    K,
    cold_record,
    encode_key,
    pack_blob,
    tier_number,
    warm_record,
)

__all__ = ["TOUCHED_MAX", "RulesMixin"]

log = logging.getLogger("memstrata.store")

#: Access times kept in RAM before they are written (about 150 bytes each: 2.5 MB at most).
TOUCHED_MAX = 16384


class RulesMixin(StorageState):
    """Tier movement of :class:`~memstrata.tiers.TieredStorage` (mixed in; shares its state)."""


    def _move_blob(self, d: bytes, dest: int) -> None:
        """Write the blob at ``dest`` and commit the index; the old copy is unreferenced after."""
        info = self.warm.blob(d)
        payload = None if info is None else self.warm.payload(d, info)
        if info is None or payload is None or info[2] == dest:
            return
        src = info[2]
        if dest == COLD:
            if self.cold is None:
                return
            new_payload = cold_record(self.cold.append(d, payload))
        else:
            from memstrata.codecs import read_header

            frame = self.cold.read(PACKREF.unpack(payload), d)
            read_header(frame)
            new_payload = warm_record(frame)
        info[2] = dest
        puts: dict[bytes, bytes] = {}
        self._share(puts, d, info, new_payload)  # a cold blob's reference lives in a data record
        puts[A + d] = pack_blob(info)
        self.backend.apply(puts)
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
                return
            if key in self.hot:
                self.hot.pop(key)
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
                    puts[A + entry[2]] = pack_blob(info)
                raw = self.backend.get(K + kb)  # an inline frame stays in the entry
                puts[K + kb] = ENTRY.pack(seq, F_PINNED if pinned else 0, entry[2]) + raw[ENTRY.size :]
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
                puts[A + d] = pack_blob(info)
        if puts:
            self.backend.apply(puts)

    def _touch(self, d: bytes, now: float) -> None:
        """Note an access to blob ``d`` (saved by ``_flush_touched``); at ``TOUCHED_MAX`` pending, save them now.

        The bound keeps RAM flat however many keys are read or rewritten
        between two migration passes. Access times only steer the idle rules:
        when they cannot be saved (a full disk), they are dropped with a warning.
        """
        touched = self._touched
        touched[d] = now
        if len(touched) >= TOUCHED_MAX:
            try:
                self._flush_touched()
            except (MemstrataError, OSError) as exc:
                log.warning("memstrata: %d access times not saved (%s)", len(touched), exc)

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
                for key in self.hot.idle(limit):
                    if not self.is_pinned(key):
                        self.hot.pop(key)
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
            self._hit_counts = bytearray(len(self._hit_counts))
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
                    frame = None if info is None else self.warm.payload(d, info)
                    if info is None or frame is None or info[2] != WARM:
                        continue
                    ref = cold.append(d, frame)
                    info[2] = COLD
                    self._share(puts, d, info, cold_record(ref))  # the owner's entry drops its warm frame
                    puts[A + d] = pack_blob(info)
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

