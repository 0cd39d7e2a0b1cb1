"""The Memory Optimization Layer's documented API, over memstrata's store and codecs.

Code written against the optimization layer's design (``OptimizationMiddleware``,
``OptimizationConfig``, ``get_optimization_level_preset``, ``StorageTier``,
``CompressionStrategy``, ``compress`` / ``decompress``) runs unchanged: each name
is a thin face over :class:`memstrata.MemoryStore` and
:class:`memstrata.CompressionEngine`, not a second implementation.

Differences from the design document, each deliberate:

* Content digests are XXH3-128 (the frames' checksums), not SHA-256.
* Deduplication is how the store addresses content, so it cannot be switched
  off: ``enable_deduplication=False`` is accepted and reported in ``config``.
* ``enable_compression=False`` stores records at zstd level 1 and never uses a
  lossy codec; every frame still carries its checksum.
* ``storage_path`` (not in the document) keeps the store in a directory;
  without it a standalone middleware lives in RAM.
"""

from __future__ import annotations

from memstrata.optimization._config import (
    LEVEL_PRESETS,
    AdaptiveConfig,
    CompressionConfig,
    DeduplicationConfig,
    OptimizationConfig,
    TieredStorageConfig,
    get_optimization_level_preset,
)
from memstrata.optimization._engine_mapping import EngineMapping
from memstrata.optimization._middleware import DeduplicationView, OptimizationMiddleware, StorageTier, TieredStorageView
from memstrata.optimization._strategies import (
    CompressionResult,
    CompressionStrategy,
    DecompressionResult,
    DocumentedCompressionEngine,
    compress,
    decompress,
)

__all__ = [
    "LEVEL_PRESETS",
    "AdaptiveConfig",
    "CompressionConfig",
    "CompressionResult",
    "CompressionStrategy",
    "DecompressionResult",
    "DeduplicationConfig",
    "DeduplicationView",
    "DocumentedCompressionEngine",
    "EngineMapping",
    "OptimizationConfig",
    "OptimizationMiddleware",
    "StorageTier",
    "TieredStorageConfig",
    "TieredStorageView",
    "compress",
    "decompress",
    "get_optimization_level_preset",
]
