"""The state every part of :class:`~memstrata.tiers.TieredStorage` shares, declared once with its types.

The reads (``_reads``), the movement rules (``_rules``) and maintenance
(``_maintenance``) are mixins of ``TieredStorage``; each derives from
:class:`StorageState`, so a type checker sees one set of attributes and the
methods one part calls on another. ``TieredStorage.__init__`` assigns them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

__all__ = ["StorageState"]


class StorageState:
    """Attributes of a tiered storage; ``_lock`` guards all of them."""

    _lock: threading.RLock
    backend: Any  # a Backend (warm tier's records)
    warm: Any  # WarmTier over the backend
    cold: Any  # ColdTier, or None without packs
    hot: Any  # HotTier (RAM)
    clock: Callable[[], float]
    read_only: bool
    refresh_dictionaries: Callable[[], bool] | None
    hot_idle_seconds: float | None
    warm_idle_seconds: float | None
    warm_max_bytes: int | None
    promote_cold_hits: int
    promote_warm_hits: int
    compact_dead_ratio: float
    counters: dict[str, int]
    last_migration_error: str | None
    _touched: dict[bytes, float]  # digest -> last access, not yet persisted
    _hit_counts: bytearray  # accesses since the last pass, a sketch by key or digest (memstrata.tiers._reads.count_hit)
    _forgotten_packs: set[int]  # packs holding blobs dropped by gc(), rewritten by compact()
    _closed: bool
    _seq: int
    _stop: threading.Event
    # counters of the index (see _recount and _counts)
    _n_keys: int
    _n_tombstones: int
    _logical: int
    _items: list[int]  # per tier
    _stored: list[int]  # per tier
    _unique: int
    _n_blobs: int
    _n_garbage: int

    if TYPE_CHECKING:  # each defined by the part that owns the job

        def _check_writable(self) -> None: ...  # _storage

        def _next_seq(self, puts: dict[bytes, bytes]) -> int: ...  # _storage

        def _recount(self) -> None: ...  # _storage

        def _apply_freeing(self, puts: dict[bytes, bytes], deletes: Iterable[bytes] = ()) -> None: ...  # _storage

        def read_frame(self, key: str | bytes) -> tuple[bytes, int, bytes]: ...  # _reads

        def decode_frame(self, frame: bytes) -> Any: ...  # _reads

        @staticmethod
        def decode_hot(v: bytes) -> Any: ...  # _reads

        @staticmethod
        def _hot_value(value: Any, frame: bytes) -> bytes: ...  # _reads

        def _move_blob(self, d: bytes, dest: int) -> None: ...  # _rules

        def _touch(self, d: bytes, now: float) -> None: ...  # _rules

        def _own_single_blobs(self, batch: int = 256) -> int: ...  # _plan

        def _share(self, puts: dict[bytes, bytes], d: bytes, info: list[Any], payload: bytes) -> None: ...  # _plan
