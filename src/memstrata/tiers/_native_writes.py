"""The writes of :class:`~memstrata.tiers.TieredStorage` whose whole batch is one native call (mixed in).

On a segment log, two common writes skip the Python plan (``_plan.py``):
a key that is absent writing content no key holds (:meth:`_write_new`,
``LogBackend.insert_new``) and a key that owns its content writing content
no key holds in its place (:meth:`_write_superseding`,
``LogBackend.supersede``). Each writes the records the plan would make,
byte for byte, and then changes the RAM counters and the hot tier exactly
as the plan's commit does; whatever the shortcut declines takes the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from memstrata.tiers._log import LogBackend
from memstrata.tiers._state import StorageState
from memstrata.tiers._tiers import (
    BLOB,
    ENTRY,
    F_PINNED,
    F_TOMBSTONE,
    HOT,
    SEQ_KEY,
    WARM,
    A,
    HotFrame,
    K,
    pack_seq,
)

__all__ = ["NativeWritesMixin"]



class NativeWritesMixin(StorageState):
    """The one-call writes of :class:`~memstrata.tiers.TieredStorage` (see the module docstring)."""

    _log: LogBackend | None
    _log_waits: bool

    if TYPE_CHECKING:  # defined by _storage

        def _write_planned(
            self, seq: int, key: Any, kb: bytes, frame: bytes, make: Callable[[], bytes] | None, t: int, pin: bool,
            d: bytes, raw_length: int, hot_value: bytes | None, old_raw: bytes | None, read: bool,
        ) -> int | None: ...

    def _write_new(
        self, seq: int, key: Any, kb: bytes, frame: bytes, make: Callable[[], bytes] | None, t: int, pin: bool, d: bytes,
        raw_length: int, hot_value: bytes | None,
    ) -> int | None:
        """A key that may be absent writing content no key holds, to the warm or hot tier (under the lock; a segment log).

        The records :meth:`_plan_write` makes for it (the entry holding the
        frame, the blob record naming the key as its owner, the seq record)
        are made and written by one native call (``LogBackend.insert_new``);
        the RAM counters and the hot tier then change as that plan's commit
        changes them. When the key or the content has a location under its
        fingerprint, the key's entry is read and :meth:`_write_native` picks
        the write; when the batch needs a segment roll, the general write
        runs (with the frame).
        """
        log_ = cast(LogBackend, self._log)
        now = self.clock()
        ticket, made = log_.insert_new(K + kb, kb, seq, F_PINNED if pin else 0, d, frame if make is None else make,
                                       A + d, raw_length, now, (SEQ_KEY, pack_seq(seq)), wait=self._log_waits)
        if ticket is None:
            if made is not None:
                return self._write_planned(seq, key, kb, made, None, t, pin, d, raw_length, hot_value, None, True)
            old_raw = log_.read_for_write(K + kb)  # the key, or the content, has a location: read its entry once
            if old_raw is not None:
                return self._write_native(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, old_raw)
            return self._write_planned(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, None, False)
        self._seq = seq
        self._new_blob_counts(d, cast(bytes, made), raw_length)  # made: the frame the batch holds
        self._n_keys += 1
        self._hot_written(key, t, cast(bytes, made), hot_value, pin)
        return ticket

    def _write_native(
        self, seq: int, key: Any, kb: bytes, frame: bytes, make: Callable[[], bytes] | None, t: int, pin: bool, d: bytes,
        raw_length: int, hot_value: bytes | None, old_raw: bytes | None,
    ) -> int | None:
        """A write of content to the warm or hot tier, ``old_raw`` the key's entry as the caller read it (None: absent).

        A key that is absent takes :meth:`_write_new`; a key whose live entry
        holds the frame of other content (it owns that blob) takes
        :meth:`_write_superseding`; any other the plan.
        """
        if old_raw is None:
            return self._write_new(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value)
        if (
            len(old_raw) > ENTRY.size and old_raw[ENTRY.size] == 0x57  # b"W": the key owns its blob
            and not old_raw[8] & F_TOMBSTONE and old_raw[9:25] != d
        ):
            return self._write_superseding(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, old_raw)
        return self._write_planned(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, old_raw, False)

    def _write_superseding(
        self, seq: int, key: Any, kb: bytes, frame: bytes, make: Callable[[], bytes] | None, t: int, pin: bool, d: bytes,
        raw_length: int, hot_value: bytes | None, old_raw: bytes,
    ) -> int | None:
        """A key that owns its content writing content no key holds, to the warm or hot tier (under the lock; a segment log).

        ``old_raw`` is the key's live entry holding its blob's frame, read by
        the caller. The records
        :meth:`_plan_write` makes for it (the old blob record with no
        reference left, the new blob record naming the key, the entry
        holding the new frame, the seq record) are made and written by one
        native call (``LogBackend.supersede``); the RAM counters then change
        as that plan's commit changes them: the old blob is released, the
        new one counted, the hot tier holds a hot write. When the log declines (another blob shares the
        fingerprint, the old blob is shared, a segment roll), the general
        write runs (with the frame, if made).
        """
        log_ = self._log
        assert log_ is not None  # a segment log (no typing.cast: a Python call on the hottest write)
        now = self.clock()
        ticket, made, old = log_.supersede(
            K + kb, old_raw, A + old_raw[9:25], kb, seq, F_PINNED if pin else 0, d, frame if make is None else make,
            A + d, raw_length, now, (SEQ_KEY, pack_seq(seq)), wait=self._log_waits,
        )
        if ticket is None or old is None:
            if made is not None:
                frame, make = made, None
            return self._write_planned(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, old_raw, False)
        assert made is not None  # a batch written holds the frame made
        self._seq = seq
        # _new_blob_counts of the new blob and _release_counts of the old one (its one reference gone with the old
        # entry), inline and summed: the key's write moves one warm blob's worth of counts to another
        _refs, _pins, location, stored, raw, _time = BLOB.unpack_from(old)
        self._touched.pop(d, None)
        items, sizes = self._items, self._stored
        items[WARM] += 1
        sizes[WARM] += len(made)
        items[location] -= 1
        sizes[location] -= stored
        self._unique += raw_length - raw
        self._logical += raw_length - raw
        self._n_garbage += 1
        if t == HOT or self.hot.holds(key):  # _hot_written's test inline: a warm write of a key the hot tier lacks
            self._hot_written(key, t, made, hot_value, pin)
        return ticket

    def _hot_written(self, key: Any, t: int, frame: bytes, hot_value: bytes | None, pin: bool) -> None:
        """The hot tier after a write of ``frame`` to tier ``t``: the key's old value goes, a hot write's comes.

        A warm write of a key the hot tier lacks leaves it as it is."""
        hot = self.hot
        if t == HOT or key in hot:
            hot.pop(key)
            if t == HOT:
                hot.put(key, HotFrame(frame) if hot_value is None else hot_value, pin)

    def _new_blob_counts(self, d: bytes, frame: bytes, raw_length: int) -> None:
        """RAM counters after a batch added a warm blob of ``frame`` with one reference (a key's live content)."""
        self._touched.pop(d, None)
        self._items[WARM] += 1
        self._stored[WARM] += len(frame)
        self._unique += raw_length
        self._n_blobs += 1
        self._logical += raw_length
