"""The tier counters saved in the log, so that opening a store need not read every index record.

``TieredStorage`` keeps counts (keys, tombstones, items and bytes per tier,
unique and logical bytes, blobs, garbage) in RAM and changes them with every
committed batch. Rebuilding them reads every entry and blob record, which is
most of the time an open takes. So a writer saves them at ``flush`` and
``close`` as one record, tagged with the log's sequence number of the batch
that writes it; an open uses them only when that batch is still the last one
in the log (nothing was committed after it), and recounts otherwise. Only the
segment log (:class:`~memstrata.tiers.LogBackend`) numbers its batches; other
backends always recount. The counts are statistics: no read depends on them.
"""

from __future__ import annotations

import struct
from typing import Any

from memstrata.tiers._log import LogBackend
from memstrata.tiers._tiers import M

__all__ = ["COUNTS_KEY", "load_counts", "save_counts"]

COUNTS_KEY = M + b"counts"
# log seq of the saving batch; keys, tombstones, logical bytes, items x3, stored bytes x3, unique bytes, blobs, garbage
COUNTS = struct.Struct("<Q12q")


def save_counts(storage: Any) -> None:
    """Write ``storage``'s counters (a writer, at flush and close) unless nothing was committed since."""
    backend = storage.backend
    if not isinstance(backend, LogBackend) or backend.seq == storage._counts_seq:
        return
    seq = backend.seq + 1  # the batch below: the sole writer holds the storage lock
    values = (storage._n_keys, storage._n_tombstones, storage._logical, *storage._items, *storage._stored,
              storage._unique, storage._n_blobs, storage._n_garbage)
    backend.apply({COUNTS_KEY: COUNTS.pack(seq, *values)})
    storage._counts_seq = seq


def load_counts(storage: Any) -> bool:
    """Set ``storage``'s counters from the saved record when it is current; False when they must be recounted."""
    backend = storage.backend
    if not isinstance(backend, LogBackend):
        return False
    raw = backend.get(COUNTS_KEY)
    if raw is None or len(raw) != COUNTS.size:
        return False
    seq, n_keys, n_tomb, logical, i0, i1, i2, s0, s1, s2, unique, n_blobs, n_garbage = COUNTS.unpack(raw)
    if seq != backend.seq:
        return False
    storage._n_keys, storage._n_tombstones, storage._logical = n_keys, n_tomb, logical
    storage._items, storage._stored = [i0, i1, i2], [s0, s1, s2]
    storage._unique, storage._n_blobs, storage._n_garbage = unique, n_blobs, n_garbage
    storage._counts_seq = seq
    return True
