"""The records one write of :class:`TieredStorage` adds to a batch, and the RAM changes once it commits.

A key whose content no other key holds keeps the frame inside its own entry
record, and the blob record names that key as its owner (see the record
layouts in :mod:`memstrata.tiers._tiers`). When a second key stores the same
content, the frame moves to a shared data record in the same batch, and the
owner's entry keeps only its fields. A blob that is owned lives exactly as
long as its owner's entry names it: rewriting the owner with other content,
or deleting it, drops the frame with the old entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memstrata.tiers._state import StorageState
from memstrata.tiers._tiers import (
    COLD,
    ENTRY,
    F_PINNED,
    F_TOMBSTONE,
    HOT,
    OWNER,
    WARM,
    A,
    B,
    HotFrame,
    K,
    cold_record,
    inline_frame,
    pack_blob,
    unpack_blob,
    unpack_entry,
    warm_record,
)

__all__ = ["WritePlanMixin"]


class WritePlanMixin(StorageState):
    """Write planning of :class:`~memstrata.tiers.TieredStorage` (mixed in; shares its state)."""

    def _get_in(self, puts: dict[bytes, bytes], k: bytes) -> bytes | None:
        """A record as it will be once ``puts`` are applied."""
        v = puts.get(k)
        return self.backend.get(k) if v is None else v

    def _blob_in(self, puts: dict[bytes, bytes], d: bytes) -> list[Any] | None:
        raw = self._get_in(puts, A + d)
        return None if raw is None else unpack_blob(raw)

    def _payload_in(
        self, puts: dict[bytes, bytes], d: bytes, info: list[Any], kb: bytes = b"", entry: bytes | None = None
    ) -> bytes | None:
        """Blob ``d``'s tagged data record as it will be once ``puts`` are applied (None: no data).

        ``entry``: key ``kb``'s entry record as it will be, when the caller has it read already.
        """
        owner = info[OWNER]
        if owner:  # an owned blob has no data record: its frame is in the owner's entry, or gone
            frame = inline_frame(entry if owner == kb else self._get_in(puts, K + owner), d)
            return None if frame is None else warm_record(frame)
        return self._get_in(puts, B + d)

    def _share(self, puts: dict[bytes, bytes], d: bytes, info: list[Any], payload: bytes) -> None:
        """Move owned blob ``d``'s frame out of its owner's entry into a data record holding ``payload``.

        ``payload`` is the tagged data record (the same frame, or a cold
        reference after a move). ``info`` loses its owner; the caller writes it.
        """
        owner = info[OWNER]
        if owner:
            raw = self._get_in(puts, K + owner)
            if raw is not None and inline_frame(raw, d) is not None:
                puts[K + owner] = raw[: ENTRY.size]
            info[OWNER] = b""
        puts[B + d] = payload

    def _own_single_blobs(self, batch: int = 256) -> int:
        """Move each warm blob held by one key from its data record into that key's entry (layout 2 -> 3).

        Stores written before layout 3, and blobs whose other keys went, keep
        a shared data record for one key; compaction folds it into the entry,
        so a warm read of that key is one record read. One batch per ``batch``
        blobs: a crash leaves each blob in one layout or the other, both valid.
        Returns how many blobs moved. Called by ``compact()`` (under the lock).
        """
        single: dict[bytes, bytes | None] = {}  # digest -> its one live key (None: more than one)
        for kb, (_seq, flags, d) in self.warm.entries():
            if not flags & F_TOMBSTONE:
                single[d] = kb if d not in single else None
        todo = [(d, info) for d, info in self.warm.blobs()
                if info[0] == 1 and info[2] == WARM and not info[OWNER] and single.get(d)]
        moved = 0
        for i in range(0, len(todo), batch):
            puts: dict[bytes, bytes] = {}
            deletes: list[bytes] = []
            for d, info in todo[i : i + batch]:
                kb = single[d]
                assert kb is not None
                entry, data = self.backend.get(K + kb), self.backend.get(B + d)
                if entry is None or len(entry) != ENTRY.size or entry[9:25] != d or data is None or data[:1] != b"W":
                    continue
                puts[K + kb] = entry + data
                info[OWNER] = kb
                puts[A + d] = pack_blob(info)
                deletes.append(B + d)
            if puts:
                self.backend.apply(puts, deletes)
                moved += len(deletes)
        return moved

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
        old_raw: bytes | None = None,
        read: bool = True,
    ) -> Callable[[], None]:
        """Add one write's records to ``puts``; returns what to do in RAM once they are committed.

        ``read=False``: ``old_raw`` is the key's entry record as it will be (None: absent), read by the caller.
        """
        now = self.clock()
        if read:
            old_raw = self._get_in(puts, K + kb)
        if (
            old_raw is not None
            and len(old_raw) > ENTRY.size
            and old_raw[ENTRY.size] == 0x57  # b"W": the entry holds its blob's one frame, so the key owns it
            and old_raw[9:25] == d
            and old_raw[8] & (F_TOMBSTONE | F_PINNED) == (F_PINNED if pin else 0)
        ):
            return self._plan_same_content(puts, seq, key, kb, old_raw, t, pin, d, now, hot_value)
        old: tuple[int, int, bytes] = (0, F_TOMBSTONE, b"") if old_raw is None else unpack_entry(old_raw)
        old_live = not old[1] & F_TOMBSTONE
        info = self._blob_in(puts, d)
        payload = None if info is None else self._payload_in(puts, d, info, kb, old_raw)
        new_blob = info is None or (info[0] == 0 and info[2] == WARM and payload is None)
        revived = info is not None and info[0] == 0  # counted as garbage until now
        old_info = None
        if old_live and old[2] != d:
            old_info = self._blob_in(puts, old[2])
        inline = b""  # the frame record kept inside this key's entry
        if info is None or new_blob:
            if make is not None:
                frame, make = make(), None
            loc = COLD if t == COLD and self.cold is not None else WARM
            if loc == COLD:
                puts[B + d] = cold_record(self.cold.append(d, frame))
                owner = b""
            else:
                inline, owner = warm_record(frame), kb
            info = [0, 0, loc, len(frame), int(raw_length), now, owner]
        else:
            if info[OWNER] == kb and old_live and old[2] == d:
                inline = b"" if payload is None else payload  # the owner writes its content again
            elif info[OWNER]:
                assert payload is not None  # an owned blob without its frame is new (above)
                self._share(puts, d, info, payload)
        refs_delta = 0 if (old_live and old[2] == d) else 1
        pins_delta = int(pin) - (int(bool(old[1] & F_PINNED)) if old_live and old[2] == d else 0)
        info[0] += refs_delta
        info[1] += pins_delta
        info[5] = now
        if old_info is not None:
            old_info[0] -= 1
            if old[1] & F_PINNED:
                old_info[1] -= 1
            if old_info[OWNER] == kb:  # its frame goes with this entry's old record
                old_info[0] = 0
            puts[A + old[2]] = pack_blob(old_info)
        puts[A + d] = pack_blob(info)
        puts[K + kb] = ENTRY.pack(seq, F_PINNED if pin else 0, d) + inline

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
                if old_raw is not None:
                    self._n_tombstones -= 1
            self._logical += info[4]
            if t == HOT or key in self.hot:
                self.hot.pop(key)
                if t == HOT:
                    if hot_value is None and make is not None:
                        frame = make()
                    self.hot.put(key, HotFrame(frame) if hot_value is None else hot_value, pin)

        return commit

    def _plan_same_content(
        self, puts: dict[bytes, bytes], seq: int, key: Any, kb: bytes, old_raw: bytes, t: int, pin: bool, d: bytes,
        now: float, hot_value: bytes | None,
    ) -> Callable[[], None]:
        """A key that owns its content writes it again (same pin): a new entry record, nothing else.

        The blob's refs, pins, location and sizes stay as they are; its access
        time joins the ones reads leave (``_touched``, saved at the next flush,
        migration pass or close), so its record is neither read nor written.
        """
        puts[K + kb] = ENTRY.pack(seq, F_PINNED if pin else 0, d) + old_raw[ENTRY.size :]

        def commit() -> None:
            self._seq = max(self._seq, seq)
            self._touch(d, now)
            if t == HOT or key in self.hot:
                self.hot.pop(key)
                if t == HOT:
                    self.hot.put(key, HotFrame(old_raw[ENTRY.size + 1 :]) if hot_value is None else hot_value, pin)

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
