"""Maintenance of :class:`TieredStorage`: garbage collection, compaction, verification, statistics."""

from __future__ import annotations

import logging
from typing import Any

from memstrata.errors import CorruptDataError
from memstrata.tiers._cold import pack_name
from memstrata.tiers._state import StorageState
from memstrata.tiers._tiers import (
    COLD,
    F_TOMBSTONE,
    PACKREF,
    WARM,
    A,
    B,
    K,
    cold_record,
    decode_key,
)

log = logging.getLogger("memstrata.store")

__all__ = ["MaintenanceMixin"]


class MaintenanceMixin(StorageState):
    """gc, compact, verify and statistics of :class:`~memstrata.tiers.TieredStorage` (mixed in; shares its state)."""


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
                self._apply_freeing({}, deletes)  # only deletes: they may use the reserve of a full disk
            self._recount()
            return {"tombstones_removed": n_tomb, "blobs_removed": n_blobs}

    def compact(self) -> dict[str, int]:
        """:meth:`gc`, fold blobs held by one key into its entry, rewrite sealed packs with dead space, vacuum the log."""
        with self._lock:
            result = self.gc()
            result.update(packs_rewritten=0, packs_removed=0, bytes_reclaimed=0)
            result["blobs_inlined"] = self._own_single_blobs()
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
                entries, damaged = self.warm.entries_checked()
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
                    payload = self.warm.payload(d, info)
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
            for kb, error in damaged:  # an entry record that fails its check (it may hold the key's frame)
                report["keys"] += 1
                report["bad_keys"].append(decode_key(kb))
                report["errors"].append(f"key {decode_key(kb)!r}: {error}")
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

