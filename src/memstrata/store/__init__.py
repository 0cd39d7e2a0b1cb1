"""The :class:`MemoryStore` façade, its :class:`StoreConfig` and the statistics registry."""

from __future__ import annotations

from memstrata.errors import StoreLockedError
from memstrata.store._config import PRESETS, StoreConfig, read_config_file
from memstrata.store._layout import format_version, is_store
from memstrata.store._snapshot import snapshot_store
from memstrata.store._stats import Counter, Histogram, StatsRegistry
from memstrata.store._store import MemoryStore

__all__ = [
    "PRESETS",
    "Counter",
    "Histogram",
    "MemoryStore",
    "StatsRegistry",
    "StoreConfig",
    "StoreLockedError",
    "format_version",
    "is_store",
    "read_config_file",
    "snapshot_store",
]
