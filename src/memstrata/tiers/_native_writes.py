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

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from memstrata.tiers._log import LogBackend
from memstrata.tiers._state import StorageState
from memstrata.tiers._tiers import F_PINNED, HOT, SEQ_KEY, WARM, A, HotFrame, K, unpack_blob

__all__ = ["NativeWritesMixin"]

_SEQ_PACK = struct.Struct("<Q").pack


class NativeWritesMixin(StorageState):
    """The one-call writes of :class:`~memstrata.tiers.TieredStorage` (see the module docstring)."""

    _log: LogBackend | None
    _log_waits: bool

    if TYPE_CHECKING:  # defined by _storage

        def _write_planned(
            self, seq: int, key: Any, kb: bytes, frame: bytes, make: Callable[[], bytes] | None, t: int, pin: bool,
            d: bytes, raw_length: int, hot_value: bytes | None, old_raw: bytes | None, read: bool,
        ) -> int | None: ...

        def _release_counts(self, info: list[Any]) -> None: ...  # _plan

    def _write_new(
        self, seq: int, key: Any, kb: bytes, frame: bytes, make: Callable[[], bytes] | None, t: int, pin: bool, d: bytes,
        raw_length: int, hot_value: bytes | None,
    ) -> int | None:
        """A key that is absent writing content no key holds, to the warm or hot tier (under the lock; a segment log).

        The records :meth:`_plan_write` makes for it (the entry holding the
        frame, the blob record naming the key as its owner, the seq record)
        are made and written by one native call (``LogBackend.insert_new``);
        the RAM counters and the hot tier then change as that plan's commit
        changes them. When the key or the content has a location under its
        fingerprint, or the batch needs a segment roll, the general write
        runs (with the frame, if made).
        """
        log_ = cast(LogBackend, self._log)
        now = self.clock()
        ticket, made = log_.insert_new(K + kb, kb, seq, F_PINNED if pin else 0, d, frame if make is None else make,
                                       A + d, raw_length, now, (SEQ_KEY, _SEQ_PACK(seq)), wait=self._log_waits)
        if ticket is None:
            if made is not None:
                frame, make = made, None
            return self._write_planned(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, None, True)
        self._seq = seq
        self._new_blob_counts(d, cast(bytes, made), raw_length)  # made: the frame the batch holds
        self._n_keys += 1
        if t == HOT:  # (a warm write came here only for a key not in the hot tier)
            hot = self.hot
            hot.pop(key)
            hot.put(key, HotFrame(cast(bytes, made)) if hot_value is None else hot_value, pin)
        return ticket

    def _write_superseding(
        self, seq: int, key: Any, kb: bytes, frame: bytes, make: Callable[[], bytes] | None, t: int, pin: bool, d: bytes,
        raw_length: int, hot_value: bytes | None, old_raw: bytes,
    ) -> int | None:
        """A key that owns its content writing content no key holds, to the warm tier (under the lock; a segment log).

        ``old_raw`` is the key's live entry holding its blob's frame, read by
        the caller (the key is not in the hot tier). The records
        :meth:`_plan_write` makes for it (the old blob record with no
        reference left, the new blob record naming the key, the entry
        holding the new frame, the seq record) are made and written by one
        native call (``LogBackend.supersede``); the RAM counters then change
        as that plan's commit changes them: the old blob is released, the
        new one counted. When the log declines (another blob shares the
        fingerprint, the old blob is shared, a segment roll), the general
        write runs (with the frame, if made).
        """
        log_ = cast(LogBackend, self._log)
        now = self.clock()
        ticket, made, old = log_.supersede(
            K + kb, old_raw, A + old_raw[9:25], kb, seq, F_PINNED if pin else 0, d, frame if make is None else make,
            A + d, raw_length, now, (SEQ_KEY, _SEQ_PACK(seq)), wait=self._log_waits,
        )
        if ticket is None or old is None:
            if made is not None:
                frame, make = made, None
            return self._write_planned(seq, key, kb, frame, make, t, pin, d, raw_length, hot_value, old_raw, False)
        self._seq = seq
        self._new_blob_counts(d, cast(bytes, made), raw_length)
        old_info = unpack_blob(old)
        old_info[0] = 0  # its one reference went with the old entry
        self._release_counts(old_info)
        self._logical -= old_info[4]
        return ticket

    def _new_blob_counts(self, d: bytes, frame: bytes, raw_length: int) -> None:
        """RAM counters after a batch added a warm blob of ``frame`` with one reference (a key's live content)."""
        self._touched.pop(d, None)
        self._items[WARM] += 1
        self._stored[WARM] += len(frame)
        self._unique += raw_length
        self._n_blobs += 1
        self._logical += raw_length
