"""Per-shape dictionaries and compact frames: the part of :class:`CompressionEngine` for small records in containers.

Records of one shape (an agent's "perf_delta" traces, a table's rows) share
most of their bytes: field names, enumerations, number formats. A dictionary
trained on one shape compresses it better than one trained on a mix, and a
container that records which dictionary a frame used (and holds its key or
content digest) needs no full frame around each record: a compact frame
(``_compact.py``) carries 1 byte of head, the length and an 8-byte check.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

from memstrata.codecs._compact import build_compact, decode_compact, encode_compact
from memstrata.codecs._dictionaries import lookup_dictionary
from memstrata.codecs._hash import digest
from memstrata.codecs._policy import CompressionPolicy
from memstrata.codecs._trainer import DictionaryTrainer
from memstrata.codecs._values import _encoder, _native_prepare, _prepare_other, deserialize, serialize

_encode = _encoder.encode

__all__ = ["KIND_DICTIONARY_PREFIX", "TAG_BYTES", "TAG_VALUE", "ShapeDictionaries"]

KIND_DICTIONARY_PREFIX = b"kind:"  # + 12 bytes of the shape name's digest -> dictionary digest ‖ shape name
TAG_BYTES = 0  # compact frame tag: bytes were given, bytes come back
TAG_VALUE = 1  # a value serialized with memstrata.serialize
_MAX_SHAPE = 200  # characters of a shape name kept


def _shape_key(shape: str) -> bytes:
    return KIND_DICTIONARY_PREFIX + digest(shape.encode())[:12]


class ShapeDictionaries:
    """Mixin of :class:`~memstrata.codecs.CompressionEngine`: per-shape dictionaries and compact frames."""

    policy: CompressionPolicy
    trainer: DictionaryTrainer
    _dictionaries: MutableMapping[bytes, bytes] | None
    _dictionary: bytes | None
    _lock: threading.Lock
    _per_codec: dict[str, list[int]]
    _record_bytes: int
    _tiny_bytes: int
    _n_errors: int
    _n_decompress: int
    _t_compress: float
    _t_decompress: float

    if TYPE_CHECKING:  # defined by CompressionEngine

        def learn(self, sample: bytes) -> bytes | None: ...

    def _init_shapes(self) -> None:
        self._shapes: dict[str, bytes] = {}
        self._shape_fields = tuple(self.policy.shape_fields)
        self._sampled_shapes: set[str] = set()
        self._settled: set[str] = set()  # shapes whose training is over: no sampling call at all (hot path)
        self._compact_stats = self._per_codec["compact"] = [0, 0, 0]
        self._level = self.policy.zstd_level
        self._learning_shapes = self.policy.kind_train_after > 0
        self._learning = self.policy.train_after > 0

    def _load_shapes(self, dictionaries: MutableMapping[bytes, bytes]) -> None:
        for key, value in list(dictionaries.items()):
            if len(key) == len(KIND_DICTIONARY_PREFIX) + 12 and key.startswith(KIND_DICTIONARY_PREFIX):
                value = bytes(value)
                shape = value[16:].decode("utf-8", "replace")
                # a damaged entry, or one whose dictionary is missing: that shape uses the general dictionary
                found = lookup_dictionary(value[:4])
                if _shape_key(shape) == key and found is not None and found[0] == value[:16]:
                    self._shapes[shape] = value[:16]
                    self._stop_shape(shape)

    def shape_of(self, value: Any) -> str:
        """The shape a record belongs to, for its dictionary.

        A dict's shape is the string value of its first ``policy.shape_fields``
        field (``"type"``, ``"trace_type"``, ``"kind"`` by default), or else
        ``"keys:"`` and its sorted field names; anything else has the general
        shape ``""``.

        >>> from memstrata import CompressionEngine
        >>> engine = CompressionEngine()
        >>> engine.shape_of({"trace_type": "perf_delta", "x": 1}), engine.shape_of({"b": 1, "a": 2})
        ('perf_delta', 'keys:a,b')
        """
        if type(value) is not dict:
            return ""
        for name in self._shape_fields:
            found = value.get(name)
            if type(found) is str:
                return found[:_MAX_SHAPE]
        return ("keys:" + ",".join(sorted(map(str, value))))[:_MAX_SHAPE]

    def shape_dictionaries(self) -> dict[str, str]:
        """``{shape: hex digest}`` of the shapes that have a dictionary of their own."""
        return {shape: d.hex() for shape, d in sorted(self._shapes.items())}

    def _set_shape_dictionary(self, shape: str, d: bytes, raw: bytes) -> None:
        if self._dictionaries is not None:
            self._dictionaries[d] = raw
            self._dictionaries[_shape_key(shape)] = d + shape.encode()
        self._shapes[shape] = d

    def _stop_shape(self, shape: str) -> None:
        """``shape`` is trained for good (or cannot be): no more samples of it."""
        if not self.policy.retrain_factor:
            self.trainer.stop(shape)
            self._settled.add(shape)

    def _offer_shape(self, data: bytes, shape: str) -> None:
        """Sample a record of ``shape``; train, measure and maybe adopt its dictionary when due."""
        if shape not in self._sampled_shapes:
            if len(self._sampled_shapes) >= self.policy.max_kinds:
                if len(self._settled) < 4 * self.policy.max_kinds:  # bounded: past that, the cheap check above serves
                    self._settled.add(shape)
                return
            self._sampled_shapes.add(shape)
        if not self.trainer.offer(data, shape):
            return
        with self._lock:
            samples = self.trainer.samples(shape)
            try:
                d, raw = self.trainer.fit(samples)
            except ValueError:  # too few or too uniform samples: the general dictionary serves
                self._stop_shape(shape)
                return
            # adopt it only if it beats the dictionary the shape uses now on the shape's own records
            current = self._shapes.get(shape) or self._dictionary
            if current is None or _size(samples, d) < _size(samples, current):
                self._set_shape_dictionary(shape, d, raw)
            self._stop_shape(shape)

    def compress_compact(self, value: Any, *, shape: str | None = None, context: bytes = b"") -> tuple[bytes, bytes | None]:
        """Encode ``value`` into a compact frame, for a container that records the dictionary.

        A compact frame (``docs/format.md``, "Compact frames") omits what a
        full frame repeats in every record: magic, codec id, dictionary
        reference and content digest. The container keeps the returned
        dictionary digest (``None``: the frame needs none) and passes it, and
        the same ``context``, to :meth:`decompress_compact`.

        Parameters
        ----------
        value : bytes or any value :func:`memstrata.serialize` accepts
            Bytes come back as bytes, other values as the deserialized value.
        shape : str, optional
            The record's shape (default :meth:`shape_of`); records of a shape
            with its own dictionary use it, others the general dictionary.
            Small records train the shape's dictionary (``policy.kind_train_after``).
        context : bytes
            What the container holds for this record's slot (its key, the
            content digest): the frame verifies only under the same context.

        Returns
        -------
        (bytes, bytes or None)
            The frame, and the 16-byte digest of the dictionary it needs.

        Examples
        --------
        >>> from memstrata import CompressionEngine
        >>> engine = CompressionEngine({"train_after": 0})
        >>> frame, d = engine.compress_compact({"type": "loss", "value": 0.25}, context=b"k1")
        >>> engine.decompress_compact(frame, d, context=b"k1")
        {'type': 'loss', 'value': 0.25}
        """
        t0 = perf_counter()
        try:
            tag = TAG_VALUE
            if type(value) is dict and _native_prepare is not None:  # the common case, as compress() takes it
                data = _encode(_native_prepare(value, _prepare_other))
            elif isinstance(value, (bytes, bytearray, memoryview)):
                data = bytes(value)
                tag = TAG_BYTES
                shape = "" if shape is None else shape
            else:
                data = serialize(value)
            if shape is None:
                shape = self.shape_of(value)
            if type(context) is not bytes:
                raise TypeError(f"context: expected bytes, got {type(context).__name__}")
            n = len(data)
            d = None
            if n <= self._record_bytes:
                if self._learning_shapes and shape and shape not in self._settled:
                    self._offer_shape(data, shape)
                if self._learning and (self._dictionary is None or self.policy.retrain_factor):
                    self.learn(data)
                d = self._shapes.get(shape) or self._dictionary
            frame, used = build_compact(data, tag, d, self._level, context, self._tiny_bytes + 1)
        except BaseException:
            self._n_errors += 1
            raise
        stats = self._compact_stats
        stats[0] += 1
        stats[1] += n
        stats[2] += len(frame)
        self._t_compress += perf_counter() - t0
        return frame, used

    def decompress_compact(self, frame: Any, dictionary: bytes | None, *, context: bytes = b"") -> Any:
        """Decode a frame of :meth:`compress_compact`, verified under ``dictionary`` and ``context``.

        Raises :class:`~memstrata.errors.CorruptDataError` on any damage, and
        when the dictionary or context is not the one the frame was made with:
        a wrong value is never returned.
        """
        t0 = perf_counter()
        if dictionary is not None and (not isinstance(dictionary, bytes) or len(dictionary) != 16):
            raise ValueError("dictionary: expected the 16-byte digest compress_compact returned, or None")
        try:
            tag, data = decode_compact(frame, dictionary, context=context)
            value = deserialize(data) if tag == TAG_VALUE else data
        except BaseException:
            self._n_errors += 1
            raise
        self._n_decompress += 1
        self._t_decompress += perf_counter() - t0
        return value


def _size(samples: list[bytes], dictionary: bytes) -> int:
    return sum(len(encode_compact(s, 0, dictionary)[0]) for s in samples)
