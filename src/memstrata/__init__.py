"""memstrata: small, fast and safe memory for AI agents.

Public names are resolved lazily (PEP 562) so that ``import memstrata`` loads no
compiled kernels, no Numba and no codec libraries; each is imported on first use.

>>> import memstrata
>>> memstrata.digest(b"hello").hex()
'b5e9c1ad071b3e7fc779cfaa5e523818'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from memstrata.errors import ClosedError, CorruptDataError, MemstrataError, StoreLockedError, UnknownCodecError

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY_ATTRS: dict[str, str] = {
    # hashing and Bloom filter (Cython)
    "digest": "memstrata._native.hashing",
    "digest_many": "memstrata._native.hashing",
    "hash_key": "memstrata._native.hashing",
    "hash_keys": "memstrata._native.hashing",
    "BloomFilter": "memstrata._native.bloom",
    # eviction orders and the cache (Cython)
    "EvictionOrder": "memstrata._native.eviction",
    "AdaptiveOrder": "memstrata._native.eviction",
    "LRUOrder": "memstrata._native.eviction",
    "LFUOrder": "memstrata._native.eviction",
    "FIFOOrder": "memstrata._native.eviction",
    "S3FIFOOrder": "memstrata._native.eviction",
    "WTinyLFUOrder": "memstrata._native.eviction",
    "Cache": "memstrata._native.cache",
    # vector kernels (Numba, compiled on first call) and vector memory
    "quantize_int8": "memstrata.kernels",
    "dequantize_int8": "memstrata.kernels",
    "quantize_int4": "memstrata.kernels",
    "dequantize_int4": "memstrata.kernels",
    "binarize": "memstrata.kernels",
    "hamming_topk": "memstrata.kernels",
    "int8_topk": "memstrata.kernels",
    "rescore_topk": "memstrata.kernels",
    "to_csr": "memstrata.kernels",
    "from_csr": "memstrata.kernels",
    "VectorMemory": "memstrata.vectors",
    # codecs, values and deduplication
    "serialize": "memstrata.codecs",
    "deserialize": "memstrata.codecs",
    "get_codec": "memstrata.codecs",
    "register_codec": "memstrata.codecs",
    "CompressionEngine": "memstrata.codecs",
    "DedupStore": "memstrata.dedup",
    # symbolic trace memory
    "SymbolicTraceMemory": "memstrata.traces",
    "TraceType": "memstrata.traces",
    "PerformanceDelta": "memstrata.traces",
    "CompressedTrace": "memstrata.traces",
    # tiered storage and the store facade
    "MemoryStore": "memstrata.store",
    "StoreConfig": "memstrata.store",
    "TieredStorage": "memstrata.tiers",
    "StorageFullError": "memstrata.tiers",
}

__all__ = [  # a literal list, so type checkers see every public name
    "BloomFilter",
    "Cache",
    "ClosedError",
    "CompressedTrace",
    "CompressionEngine",
    "CorruptDataError",
    "DedupStore",
    "EvictionOrder",
    "FIFOOrder",
    "LFUOrder",
    "LRUOrder",
    "MemoryStore",
    "MemstrataError",
    "PerformanceDelta",
    "S3FIFOOrder",
    "StorageFullError",
    "StoreConfig",
    "StoreLockedError",
    "SymbolicTraceMemory",
    "TieredStorage",
    "TraceType",
    "UnknownCodecError",
    "VectorMemory",
    "__version__",
    "binarize",
    "dequantize_int4",
    "dequantize_int8",
    "deserialize",
    "digest",
    "digest_many",
    "from_csr",
    "get_codec",
    "hamming_topk",
    "hash_key",
    "hash_keys",
    "int8_topk",
    "quantize_int4",
    "quantize_int8",
    "register_codec",
    "rescore_topk",
    "serialize",
    "to_csr",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY_ATTRS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'memstrata' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_ATTRS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from memstrata._native.bloom import BloomFilter
    from memstrata._native.cache import Cache
    from memstrata._native.eviction import (
        AdaptiveOrder,
        EvictionOrder,
        FIFOOrder,
        LFUOrder,
        LRUOrder,
        S3FIFOOrder,
        WTinyLFUOrder,
    )
    from memstrata._native.hashing import digest, digest_many, hash_key, hash_keys
    from memstrata.codecs import CompressionEngine, deserialize, get_codec, register_codec, serialize
    from memstrata.dedup import DedupStore
    from memstrata.kernels import (
        binarize,
        dequantize_int4,
        dequantize_int8,
        from_csr,
        hamming_topk,
        int8_topk,
        quantize_int4,
        quantize_int8,
        rescore_topk,
        to_csr,
    )
    from memstrata.store import MemoryStore, StoreConfig
    from memstrata.tiers import StorageFullError, TieredStorage
    from memstrata.traces import CompressedTrace, PerformanceDelta, SymbolicTraceMemory, TraceType
    from memstrata.vectors import VectorMemory
