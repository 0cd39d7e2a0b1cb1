"""Values into frames for :class:`~memstrata.MemoryStore`: digest first, compress only new content, learn dictionaries.

A value is serialized and digested on every write (the digest is what dedup
looks up); the frame is made later, by the tiers, only when the content is
new. Small new records feed the engine's dictionary trainer
(:class:`~memstrata.codecs.DictionaryTrainer`, configured by :func:`engine_policy`):
a uniform sample from which the zstd dictionary is retrained at 1x, 4x, 16x
... ``train_after`` records. The dictionaries are kept in the store's backend
(``d`` records) so every frame naming one can be read back, by this process
and by read-only followers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from functools import partial
from typing import Any

import numpy as np

from memstrata.codecs import digest as _digest
from memstrata.codecs import serialize as _serialize

__all__ = ["DICTIONARY_BYTES", "DictionaryRecords", "Prepared", "RecordMaker", "engine_policy", "load_new_dictionaries"]

DICTIONARY_BYTES = 16 * 1024
SAMPLE_RESERVOIR = 2000
LEARN_MAX_BYTES = 16 * 1024  # records above this teach a dictionary nothing it needs
RETRAIN_FACTOR = 4  # one dictionary trained on the first records fits later kinds of records badly


def engine_policy(zstd_level: int, train_after: int) -> dict[str, Any]:
    """The :class:`~memstrata.codecs.CompressionEngine` policy of a store.

    Its trainer samples the new small records (uniformly, up to
    ``SAMPLE_RESERVOIR``) and retrains at 1x, 4x, 16x ... ``train_after``;
    old frames name their dictionary, which stays stored.
    """
    return {
        "zstd_level": zstd_level,
        "train_after": train_after,
        "dictionary_bytes": DICTIONARY_BYTES,
        "record_bytes": LEARN_MAX_BYTES,
        "retrain_factor": RETRAIN_FACTOR,
        "sample_reservoir": SAMPLE_RESERVOIR,
    }

# (key, frame maker, content digest, serialized length, serialized bytes for the hot tier or None)
Prepared = tuple[Any, Callable[[], bytes], bytes, int, "bytes | None"]


class DictionaryRecords(MutableMapping[bytes, bytes]):
    """The engine's trained zstd dictionaries, kept as ``d``-prefixed records in the backend."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def __getitem__(self, key: bytes) -> bytes:
        v = self._backend.get(b"d" + key)
        if v is None:
            raise KeyError(key)
        return v

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._backend.put(b"d" + key, bytes(value))

    def __delitem__(self, key: bytes) -> None:
        self._backend.delete(b"d" + key)

    def __iter__(self) -> Iterator[bytes]:
        return (k[1:] for k, _ in self._backend.scan(b"d"))

    def __len__(self) -> int:
        return sum(1 for _ in self._backend.scan(b"d"))


def load_new_dictionaries(backend: Any, known: set[bytes]) -> bool:
    """Register the dictionaries stored in ``backend`` that are not in ``known`` (adds them); True if any."""
    from memstrata.codecs import register_dictionary

    new = False
    for k, v in backend.scan(b"d"):
        if len(k) == 17 and k not in known:
            register_dictionary(v)
            known.add(k)
            new = True
    return new


class RecordMaker:
    """Prepares each written value: its digest now, its frame on demand (see the module docstring)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def prepare(self, key: Any, value: Any, allow_loss: bool) -> Prepared:
        """Serialize and digest ``value``; the frame is made later, only if the content is new."""
        if type(key) is not str and type(key) is not bytes and not isinstance(key, (str, bytes)):
            raise TypeError(f"key: expected str or bytes, got {type(key).__name__}")
        data = _serialize(value)
        engine = self.engine
        if allow_loss and isinstance(value, np.ndarray) and value.dtype.kind == "f":
            d = _digest(data + b"\x00lossy")
            # one range per vector for single vectors and short batches (per-dimension scales would outweigh the codes)
            per = "vector" if value.ndim == 1 or value.shape[0] < 64 else "dimension"

            def make_lossy() -> bytes:
                return engine.compress(value, allow_loss=True, codec={"id": "int8", "per": per})

            return key, make_lossy, d, len(data), None
        d = _digest(data)
        if type(value) is bytes:  # one call from the bytes to their frame (the core's records take this path)
            return key, partial(engine.compress_bytes, value), d, len(data), None
        if isinstance(value, (np.ndarray, bytearray, memoryview)):

            def make_array() -> bytes:
                return engine.compress(value)

            return key, make_array, d, len(data), None

        def make_record() -> bytes:  # compressed (and sampled for the dictionary) only when the content is new
            return engine.compress_serialized(data, d)

        return key, make_record, d, len(data), data
