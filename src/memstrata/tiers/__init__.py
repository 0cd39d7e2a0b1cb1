"""Tiered storage: hot RAM, warm segment log (or any backend), cold append-only packs.

A blob is written and committed at its destination before it is removed from
its source, so a crash at any instant leaves every key readable from at least
one tier. See :class:`TieredStorage`.

>>> from memstrata.tiers import TieredStorage
>>> from memstrata.codecs import get_codec
>>> with TieredStorage() as ts:
...     _ = ts.write("k", get_codec("zstd").encode("v" * 100), tier="warm")
...     ts.read("k")[1]
'warm'
"""

from __future__ import annotations

from memstrata.tiers._backend import (
    DURABILITY_LEVELS,
    Backend,
    MappingBackend,
    MemoryBackend,
    SQLiteBackend,
    StorageFullError,
)
from memstrata.tiers._cold import ColdTier, LocalLocation, Location, MemoryLocation
from memstrata.tiers._copy import copy_log
from memstrata.tiers._log import SEED, LogBackend
from memstrata.tiers._repair import finish_swap, repair_log, scan_log
from memstrata.tiers._segments import fsync_dir
from memstrata.tiers._servers import PostgresBackend, RedisBackend, connect_postgres, connect_redis
from memstrata.tiers._storage import TieredStorage, tier_number
from memstrata.tiers._tiers import (
    COLD,
    ENTRY,
    F_TOMBSTONE,
    HOT,
    TIER_NAMES,
    WARM,
    HotFrame,
    HotTier,
    WarmTier,
    decode_key,
    encode_key,
)

__all__ = [
    "COLD",
    "DURABILITY_LEVELS",
    "ENTRY",
    "F_TOMBSTONE",
    "HOT",
    "SEED",
    "TIER_NAMES",
    "WARM",
    "Backend",
    "ColdTier",
    "HotFrame",
    "HotTier",
    "LocalLocation",
    "Location",
    "LogBackend",
    "MappingBackend",
    "MemoryBackend",
    "MemoryLocation",
    "PostgresBackend",
    "RedisBackend",
    "SQLiteBackend",
    "StorageFullError",
    "TieredStorage",
    "WarmTier",
    "connect_postgres",
    "connect_redis",
    "copy_log",
    "decode_key",
    "encode_key",
    "finish_swap",
    "fsync_dir",
    "repair_log",
    "scan_log",
    "tier_number",
]
