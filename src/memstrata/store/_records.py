"""Values into frames for :class:`~memstrata.MemoryStore`: digest first, compress only new content, learn dictionaries.

A value is serialized and digested on every write (the digest is what dedup
looks up); the frame is made later, by the tiers, only when the content is
new. Small records feed a uniform sample from which the zstd dictionary is
retrained at 1x, 4x, 16x ... ``train_after`` records; the dictionaries are
kept in the store's backend (``d`` records) so every frame naming one can be
read back, by this process and by read-only followers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import numpy as np

from memstrata.codecs import digest as _digest
from memstrata.codecs import serialize as _serialize

__all__ = ["DICTIONARY_BYTES", "DictionaryRecords", "Prepared", "RecordMaker", "load_new_dictionaries"]

DICTIONARY_BYTES = 16 * 1024
SAMPLE_RESERVOIR = 2000
LEARN_MAX_BYTES = 16 * 1024  # records above this teach a dictionary nothing it needs

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

    def __init__(self, engine: Any, train_after: int) -> None:
        self.engine = engine
        self._samples: list[bytes] = []
        self._n_new_records = 0
        self._train_at = train_after

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
        if isinstance(value, (np.ndarray, bytes, bytearray, memoryview)):

            def make_array() -> bytes:
                return engine.compress(value)

            return key, make_array, d, len(data), None

        def make_record() -> bytes:  # compressed only when the content is new (dedup first)
            self._learn(data)
            return engine.compress_serialized(data, d)

        return key, make_record, d, len(data), data

    def _learn(self, data: bytes) -> None:
        """Keep a sample of new small records; (re)train the zstd dictionary at 1x, 4x, 16x ... ``train_after``.

        One dictionary trained on the first records fits later kinds of
        records badly; retraining on a uniform sample of everything seen keeps
        the ratio up. Old frames name their dictionary, which stays stored.
        """
        if not self._train_at or len(data) > LEARN_MAX_BYTES:
            return
        self._n_new_records += 1
        n = self._n_new_records
        samples = self._samples
        if len(samples) < SAMPLE_RESERVOIR:
            samples.append(data)
        else:  # reservoir sampling: every record seen so far is equally likely to be kept
            j = int.from_bytes(os.urandom(4), "little") % n
            if j < SAMPLE_RESERVOIR:
                samples[j] = data
        if n >= self._train_at:
            self._train_at *= 4
            try:
                self.engine.train(list(samples))
            except ValueError:  # too few or too uniform samples: keep the current dictionary
                pass
