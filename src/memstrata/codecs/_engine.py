"""CompressionEngine: picks a codec per value, trains zstd dictionaries, keeps statistics."""

from __future__ import annotations

import threading
import time
from collections.abc import MutableMapping
from threading import get_ident
from time import perf_counter as _perf_counter
from typing import Any, cast

import numpy as np
from lz4.block import compress as _lz4_compress

from memstrata.codecs import _values
from memstrata.codecs._background import TrainingWorker
from memstrata.codecs._bytes import LZ4Codec, ZstdCodec
from memstrata.codecs._dictionaries import lookup_dictionary, register_dictionary
from memstrata.codecs._frame import KIND_BYTES, KIND_VALUE, parse_frame
from memstrata.codecs._hash import digest
from memstrata.codecs._policy import CompressionPolicy
from memstrata.codecs._registry import LONG_DIGEST_MIN_BYTES, Codec, decode, get_codec
from memstrata.codecs._registry import _build_frame as _build
from memstrata.codecs._shapes import ShapeDictionaries
from memstrata.codecs._trainer import DictionaryTrainer
from memstrata.codecs._values import _encoder, _prepare_other, serialize

if _values._native_prepare is not None:
    _prepare_value = _values._native_prepare
else:  # pragma: no cover - source checkout without compiled extensions

    def _prepare_value(value: Any, fallback: Any) -> Any:
        return _values._prepare(value)


_encode_value = _encoder.encode


def _lz4_positional() -> bool:
    """Whether lz4's block compressor takes ``store_size`` as its third positional argument.

    A keyword costs ~0.5 µs more per call, a third of a small block's time; the
    positional form is used only when it makes the same bytes as the keyword form.
    """
    probe = b"memstrata lz4 probe " * 4
    try:
        return bool(_lz4_compress(probe, "default", False) == _lz4_compress(probe, store_size=False))
    except TypeError:
        return False


_LZ4_POSITIONAL = _lz4_positional()

__all__ = ["CompressionEngine", "CompressionPolicy"]

_KINDS = ("record", "bytes", "array", "sparse", "graph")
_NO_META: dict[str, Any] = {}
#: bytes values up to this size are compressed with lz4, not zstd: on records of 80-150 bytes
#: (keys, numbers, a 16-byte checksum, short text) lz4 shrinks them as much or more, in ~3 us
#: against zstd's ~10 us (level 3, no dictionary); zstd pulls ahead from ~250 bytes of text
SMALL_BUFFER_BYTES = 192
ACTIVE_DICTIONARY_KEY = b"active"


def _zstd_codec(config: dict[str, Any]) -> ZstdCodec:
    """The zstd codec of ``config`` (the record path reads its compressor directly)."""
    codec = get_codec(config)
    assert isinstance(codec, ZstdCodec)
    return codec


class CompressionEngine(ShapeDictionaries):
    """Compress values into frames, choosing the codec by kind, size and loss policy.

    Parameters
    ----------
    policy : CompressionPolicy or dict, optional
    dictionaries : mutable mapping of bytes to bytes, optional
        Where trained zstd dictionaries are kept (``{digest: dictionary bytes}``,
        plus ``b"active"`` -> the digest in use, and one entry per record shape
        with a dictionary of its own). Dictionaries found there are registered,
        and the active ones are used, so an engine reopened on the same mapping
        decodes and encodes as before.

    Choice of codec (``compress(value, kind=None, allow_loss=False)``):

    * float arrays: ``policy.lossy_codec`` (int8) when ``allow_loss``, else
      ``policy.array_codec`` (blosc2, shuffled); other arrays: the array codec;
    * SciPy CSR matrices or ``kind="sparse"``: ``csr``;
    * ``kind="graph"`` with ``allow_loss``: ``policy.graph_codec``;
    * records (any other value): raw when tiny, zstd otherwise; small records
      use the trained dictionary once ``train_after`` have been seen;
    * bytes: raw when tiny, lz4 up to ``SMALL_BUFFER_BYTES`` (192), zstd above,
      and raw whenever the compressed payload would not be shorter.

    Dictionaries are trained by one :class:`~memstrata.codecs.DictionaryTrainer`
    (:attr:`trainer`): the general one from the small records :meth:`compress`,
    :meth:`compress_serialized` and :meth:`learn` see, and with
    :meth:`compress_compact` one per record shape (:meth:`shape_of`).

    ``codec=`` overrides the choice for one call. Safe to call from several
    threads (each thread gets its own zstd contexts); the statistics counters are
    not locked, so under heavy concurrency they can undercount slightly.

    Examples
    --------
    >>> from memstrata import CompressionEngine
    >>> engine = CompressionEngine({"train_after": 0})
    >>> frame = engine.compress({"trace_id": "t1", "loss": 0.25, "tags": ["a"] * 20})
    >>> engine.decompress(frame)
    {'trace_id': 't1', 'loss': 0.25, 'tags': ['a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a']}
    >>> stats = engine.get_statistics()
    >>> stats["count"], stats["codecs"]["zstd"]["count"], stats["ratio"] < 1
    (1, 1, True)
    """

    def __init__(
        self,
        policy: CompressionPolicy | dict[str, Any] | None = None,
        *,
        dictionaries: MutableMapping[bytes, bytes] | None = None,
        train_in_background: bool = False,
    ) -> None:
        if policy is None:
            policy = CompressionPolicy()
        elif isinstance(policy, dict):
            policy = CompressionPolicy.from_dict(policy)
        elif not isinstance(policy, CompressionPolicy):
            raise TypeError(f"policy: expected a CompressionPolicy, a dict or None, got {type(policy).__name__}")
        self.policy = policy
        self._dictionaries = dictionaries
        self._lock = threading.Lock()
        self._raw = get_codec("raw")
        self._zstd = _zstd_codec({"id": "zstd", "level": policy.zstd_level})
        self._lz4 = cast(LZ4Codec, get_codec("lz4"))
        self._record_codec: ZstdCodec = self._zstd
        self._array_codec = get_codec(policy.array_codec)
        self._lossy_codec = get_codec(policy.lossy_codec)
        self._graph_codec = get_codec(policy.graph_codec)
        self._csr = get_codec("csr")
        self.trainer = DictionaryTrainer.from_policy(policy)
        self._retraining = policy.retrain_factor > 0 and policy.train_after > 0
        self._dictionary: bytes | None = None
        self._worker = TrainingWorker(self._train_due) if train_in_background else None
        # statistics: codec name -> [count, bytes in, bytes out]
        self._per_codec: dict[str, list[int]] = {}
        self._zstd_stats = self._per_codec["zstd"] = [0, 0, 0]
        self._lz4_stats = self._per_codec["lz4"] = [0, 0, 0]
        self._raw_stats = self._per_codec["raw"] = [0, 0, 0]
        self._tiny_bytes = policy.tiny_bytes
        self._record_bytes = policy.record_bytes
        self._n_decompress = self._n_errors = 0
        self._t_compress = self._t_decompress = 0.0
        self._init_shapes()
        if dictionaries is not None:
            for key, raw in list(dictionaries.items()):
                if len(key) == 16:
                    register_dictionary(raw)
            active = dictionaries.get(ACTIVE_DICTIONARY_KEY)
            if active is not None:
                self.use_dictionary(bytes(active))
            self._load_shapes(dictionaries)

    # ------------------------------------------------------------ choosing --

    @property
    def dictionary(self) -> bytes | None:
        """Digest of the zstd dictionary used for small records, or ``None``."""
        return self._dictionary

    def use_dictionary(self, dictionary_digest: bytes) -> None:
        """Use a registered dictionary for small records from now on."""
        codec = _zstd_codec({"id": "zstd", "level": self.policy.zstd_level, "dictionary": dictionary_digest.hex()})
        self._record_codec = codec
        self._dictionary = dictionary_digest
        if not self.policy.retrain_factor:
            self.trainer.stop()  # trained for good: no more samples

    def train(self, samples: list[Any] | None = None, *, shape: str = "") -> bytes:
        """Train a dictionary on ``samples`` (records or serialized records; default: the trainer's) and use it.

        With ``shape`` (see :meth:`shape_of`), the dictionary is that shape's own,
        used by :meth:`compress_compact` for records of the shape. Returns the new
        dictionary's digest; it is also stored in ``dictionaries``. Raises
        ``ValueError`` when zstd cannot train on the samples.
        """
        items: list[Any] = self.trainer.samples(shape) if samples is None else [
            s if isinstance(s, (bytes, bytearray, memoryview)) else serialize(s) for s in samples
        ]
        d, raw = self.trainer.fit(items, self.policy.dictionary_bytes)
        if shape:
            self._set_shape_dictionary(shape, d, raw)
            return d
        if self._dictionaries is not None:
            self._dictionaries[d] = raw
            self._dictionaries[ACTIVE_DICTIONARY_KEY] = d
        self.use_dictionary(d)
        return d

    def learn(self, sample: bytes) -> bytes | None:
        """Offer a serialized small record to the general dictionary's trainer.

        Trains and adopts a new dictionary when one is due (``policy.train_after``
        records, then every ``policy.retrain_factor`` times as many); returns its
        digest then, else ``None`` (always ``None`` with ``train_in_background``:
        the training is only started). :meth:`compress` and
        :meth:`compress_serialized` call this themselves; a caller that frames
        records some other way (or only some of them) offers them here.
        """
        if not self.trainer.offer(sample):
            return None
        if self._worker is not None:
            self._worker.request()
            return None
        return self._train_due()

    def _train_due(self) -> bytes | None:
        """Train the general dictionary now that it is due; its digest, or None when zstd cannot train."""
        with self._lock:
            try:
                return self.train()
            except ValueError:  # samples zstd cannot train on: keep the current dictionary
                if not self.policy.retrain_factor:
                    self.trainer.stop()
                return None

    def wait_training(self, timeout: float | None = None) -> bool:
        """Wait for a background training (``train_in_background``) asked for so far; False on timeout."""
        return True if self._worker is None else self._worker.wait(timeout)

    def close(self) -> None:
        """Wait for a background training and start no more (the engine still compresses and decodes)."""
        if self._worker is not None:
            self._worker.close()

    def choose(self, value: Any, kind: str | None = None, allow_loss: bool = False) -> Codec:
        """The codec :meth:`compress` would use for ``value`` (records: by size)."""
        if kind is not None and kind not in _KINDS:
            raise ValueError(f"kind: expected one of {_KINDS} or None, got {kind!r}")
        if kind == "sparse" or getattr(value, "format", None) == "csr":
            return self._csr
        if kind == "graph" and allow_loss:
            return self._graph_codec
        if type(value) is np.ndarray and kind in (None, "array"):
            if allow_loss and value.dtype in (np.float32, np.float64) and value.ndim in (1, 2) and value.size:
                return self._lossy_codec
            return self._raw if value.nbytes <= self.policy.tiny_bytes else self._array_codec
        if kind == "array":
            raise TypeError(f"value: kind='array' needs a numpy array, got {type(value).__name__}")
        return self._record_codec

    # -------------------------------------------------------------- encode --

    def compress(
        self, value: Any, kind: str | None = None, allow_loss: bool = False, codec: Any = None
    ) -> bytes:
        """Encode ``value`` into a frame.

        Parameters
        ----------
        value : any value :func:`memstrata.serialize` accepts, bytes, ndarray, SciPy CSR or graph dict
        kind : {"record", "bytes", "array", "sparse", "graph"}, optional
            What ``value`` is; guessed from its type when omitted.
        allow_loss : bool
            Allow a lossy codec (int8 for float vectors, graph pruning).
        codec : str, dict or Codec, optional
            Use this codec instead of choosing one.

        Returns
        -------
        bytes
            A frame; :meth:`decompress` (or :func:`memstrata.codecs.decode`)
            reads it back.
        """
        t0 = _perf_counter()
        if kind is None and codec is None and type(value) is dict:  # the common case: a record
            try:
                buf = _encode_value(_prepare_value(value, _prepare_other))
            except BaseException:
                self._n_errors += 1
                raise
            n_in = len(buf)
            zc = self._record_codec
            dd = zc.dictionary
            if dd is not None and self._tiny_bytes < n_in <= self._record_bytes:
                # the per-record hot path, inlined: each layer of calls it skips is measurable
                # against the ~3 µs zstd takes on a 500-byte record (bench_codecs, traces)
                comp = zc._cctx.get(get_ident())
                if comp is None:
                    comp = zc._compressor()
                frame = _build(2, 1, comp.compress(buf), n_in, digest(buf), b"", dd, n_in < 1024)
                if self._retraining:
                    self.learn(buf)
                stats = self._zstd_stats
                stats[0] += 1
                stats[1] += n_in
                stats[2] += len(frame)
                self._t_compress += _perf_counter() - t0
                return frame
            return self.compress_serialized(buf, None, t0)
        if kind is not None and kind not in _KINDS:
            raise ValueError(f"kind: expected one of {_KINDS} or None, got {kind!r}")
        try:
            c: Codec
            if codec is not None:
                c = get_codec(codec)
                if not c.lossless and not allow_loss:
                    raise ValueError(f"codec: {c.codec_id!r} is lossy; pass allow_loss=True to use it")
                frame = c.encode(value)
                n_in = _size_of(value, frame)
            else:
                t = type(value)
                if t is bytes or t is bytearray or t is memoryview or kind == "bytes":
                    c, frame, n_in = self._compress_buffer(value)
                elif (kind is not None and kind != "record") or t is np.ndarray or (
                    t is not list and t is not str and hasattr(value, "indptr")
                ):
                    c = self.choose(value, kind, allow_loss)
                    frame = c.encode(value)
                    n_in = _size_of(value, frame)
                else:
                    buf = serialize(value)
                    return self.compress_serialized(buf, None, t0)
        except BaseException:
            self._n_errors += 1
            raise
        return self._count(c, n_in, frame, t0)

    def compress_serialized(self, buf: bytes, content_digest: bytes | None, t0: float | None = None) -> bytes:
        """Frame a record that is already serialized, the way :meth:`compress` frames values.

        For callers that serialize and digest a value themselves (to deduplicate
        before compressing, as the store and ``DedupStore`` do): ``buf`` is the
        output of :func:`memstrata.codecs.serialize`, ``content_digest`` its full
        16-byte digest if known (it is computed otherwise), ``t0`` the
        ``time.perf_counter()`` at which the caller's work began, for the
        statistics. The codec is chosen by size as for a record, and small
        records feed the dictionary trainer. Decode the frame with
        :meth:`decompress`, which returns the deserialized value.

        Examples
        --------
        >>> from memstrata.codecs import serialize
        >>> engine = CompressionEngine()
        >>> frame = engine.compress_serialized(serialize({"a": 1}), None)
        >>> engine.decompress(frame)
        {'a': 1}
        """
        if t0 is None:
            t0 = _perf_counter()
        n_in = len(buf)
        policy = self.policy
        try:
            if n_in <= policy.tiny_bytes:
                c = self._raw
            elif n_in > policy.record_bytes:
                c = self._zstd
            else:
                c = self._record_codec
                self.learn(buf)
            frame = c._frame_plain(buf, KIND_VALUE, content_digest)
        except BaseException:
            self._n_errors += 1
            raise
        return self._count(c, n_in, frame, t0)

    def _count(self, c: Codec, n_in: int, frame: bytes, t0: float) -> bytes:
        stats = self._per_codec.get(c.codec_id)
        if stats is None:
            stats = self._per_codec[c.codec_id] = [0, 0, 0]
        stats[0] += 1
        stats[1] += n_in
        stats[2] += len(frame)
        self._t_compress += _perf_counter() - t0
        return frame

    def _compress_buffer(self, value: Any) -> tuple[Codec, bytes, int]:
        """The frame of a bytes-like value: raw when tiny, lz4 up to SMALL_BUFFER_BYTES, zstd above; raw when that does not shrink it.

        A compressed payload no shorter than the bytes themselves is dropped for
        a raw frame (same content digest, decoded without a decompressor):
        records this small are mostly keys, numbers and checksums.
        """
        if type(value) is not bytes:
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise TypeError(f"value: kind='bytes' needs a bytes-like object, got {type(value).__name__}")
            value = memoryview(value).cast("B").tobytes()
        n = len(value)
        if n <= self._tiny_bytes:
            c: Codec = self._raw
            payload = value
        else:
            if n <= SMALL_BUFFER_BYTES:  # one block: the payload, without the chunking layer's call
                c = self._lz4
                payload = self._lz4.block(value)
            else:
                c = self._zstd
                payload = c._encode(value, _NO_META)[0]
            if len(payload) >= n:
                c, payload = self._raw, value
        if n < LONG_DIGEST_MIN_BYTES:  # every codec here may leave a small frame's digest implicit
            frame = _build(c.frame_id, KIND_BYTES, payload, n, digest(value), b"", None, True)
        else:
            frame = _build(c.frame_id, KIND_BYTES, payload, n, digest(value), b"", None, False)
        return c, frame, n

    def compress_bytes(self, value: bytes) -> bytes:
        """The frame :meth:`compress` makes of ``value``, a ``bytes`` object, in fewer calls.

        For the store's small byte records (up to ``SMALL_BUFFER_BYTES``): one
        lz4 block, raw when that does not shrink them, framed and counted here.
        Anything else (another type or size, an lz4 level) goes to
        :meth:`compress`; the frames are the same bytes either way.
        """
        if type(value) is not bytes:
            return self.compress(value, "bytes")
        n = len(value)
        if n <= self._tiny_bytes or n > SMALL_BUFFER_BYTES:
            return self.compress(value)
        t0 = _perf_counter()
        try:
            payload = _lz4_compress(value, "default", False) if _LZ4_POSITIONAL else _lz4_compress(value, store_size=False)
            if len(payload) < n:
                stats = self._lz4_stats
                # frame ids: lz4 1, raw 0; the digest is implicit (SMALL_BUFFER_BYTES < LONG_DIGEST_MIN_BYTES)
                frame = _build(1, KIND_BYTES, payload, n, digest(value), b"", None, True)
            else:
                stats = self._raw_stats
                frame = _build(0, KIND_BYTES, value, n, digest(value), b"", None, True)
        except BaseException:
            self._n_errors += 1
            raise
        stats[0] += 1
        stats[1] += n
        stats[2] += len(frame)
        self._t_compress += _perf_counter() - t0
        return frame

    # -------------------------------------------------------------- decode --

    def decompress(self, frame: Any, *, expected_digest: bytes | None = None) -> Any:
        """Decode a frame (from this engine or any codec); see :func:`memstrata.codecs.decode`."""
        t0 = time.perf_counter()
        try:
            value = decode(frame, expected_digest=expected_digest)
        except BaseException:
            self._n_errors += 1
            raise
        self._n_decompress += 1
        self._t_decompress += time.perf_counter() - t0
        return value

    # ---------------------------------------------------------- statistics --

    def get_statistics(self) -> dict[str, Any]:
        """Counters since creation.

        Returns
        -------
        dict
            ``count`` (frames made), ``decompress_count``, ``bytes_in`` (raw
            serialized bytes), ``bytes_out`` (frame bytes), ``ratio`` (out/in),
            ``codecs`` (per codec: ``count``, ``bytes_in``, ``bytes_out``,
            ``ratio``), ``compress_seconds``, ``decompress_seconds``, ``errors``,
            ``dictionary`` (hex digest or ``None``), ``samples_collected`` and
            ``shapes`` (``{shape: hex digest}`` of the per-shape dictionaries;
            compact frames are counted under ``codecs["compact"]``).
        """
        codecs = {
            name: {"count": c, "bytes_in": i, "bytes_out": o, "ratio": (o / i) if i else 0.0}
            for name, (c, i, o) in sorted(self._per_codec.items())
            if c
        }
        count = sum(c for c, _, _ in self._per_codec.values())
        bytes_in = sum(i for _, i, _ in self._per_codec.values())
        bytes_out = sum(o for _, _, o in self._per_codec.values())
        return {
            "count": count,
            "decompress_count": self._n_decompress,
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "ratio": (bytes_out / bytes_in) if bytes_in else 0.0,
            "codecs": codecs,
            "compress_seconds": self._t_compress,
            "decompress_seconds": self._t_decompress,
            "errors": self._n_errors,
            "dictionary": None if self._dictionary is None else self._dictionary.hex(),
            "samples_collected": self.trainer.collected(),
            "shapes": self.shape_dictionaries(),
        }


def _size_of(value: Any, frame: bytes) -> int:
    """Raw size of what a codec encoded (the frame's original length)."""
    if type(value) is np.ndarray:
        return value.nbytes
    # our own fresh frame: its header needs no verification (nor, if implicit, a decode)
    return parse_frame(frame, lookup_dictionary, verify=False)[0].original_length

