"""The documented compression API: ``CompressionStrategy``, ``compress`` -> ``CompressionResult``, ``decompress``.

A thin face over :class:`memstrata.CompressionEngine`: a strategy names a codec
(``adaptive`` lets the engine choose), the result carries the self-verifying
frame, and decompression checks it. Lossy strategies (quantization,
binarization, graph pruning) are used only because the caller named them.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Any

from memstrata.codecs import CompressionEngine, codec_for_frame_id, read_header
from memstrata.errors import CorruptDataError

__all__ = [
    "CompressionResult",
    "CompressionStrategy",
    "DecompressionResult",
    "DocumentedCompressionEngine",
    "compress",
    "decompress",
]


class CompressionStrategy(str, enum.Enum):
    """How to compress: a codec, or ``ADAPTIVE`` for the engine's own choice."""

    ADAPTIVE = "adaptive"
    NONE = "none"
    LZ4 = "lz4"
    ZSTD = "zstd"
    ZLIB = "zlib"
    BLOSC = "blosc"
    QUANTIZE_INT8 = "quantize_int8"
    QUANTIZE_INT4 = "quantize_int4"
    BINARIZE = "binarize"
    SPARSE_CSR = "sparse_csr"
    GRAPH_PRUNE = "graph_prune"


# strategy -> (codec id, lossy, kind)
_CODECS: dict[CompressionStrategy, tuple[str | None, bool, str | None]] = {
    CompressionStrategy.ADAPTIVE: (None, False, None),
    CompressionStrategy.NONE: ("raw", False, None),
    CompressionStrategy.LZ4: ("lz4", False, None),
    CompressionStrategy.ZSTD: ("zstd", False, None),
    CompressionStrategy.ZLIB: ("zlib", False, None),
    CompressionStrategy.BLOSC: ("blosc2", False, None),
    CompressionStrategy.QUANTIZE_INT8: ("int8", True, None),
    CompressionStrategy.QUANTIZE_INT4: ("int4", True, None),
    CompressionStrategy.BINARIZE: ("binary", True, None),
    CompressionStrategy.SPARSE_CSR: ("csr", False, "sparse"),
    CompressionStrategy.GRAPH_PRUNE: (None, True, "graph"),
}
_STRATEGY_OF_CODEC = {codec: s for s, (codec, _, _) in _CODECS.items() if codec is not None}
_STRATEGY_OF_CODEC.update({"graph_prune": CompressionStrategy.GRAPH_PRUNE})


@dataclass(frozen=True)
class CompressionResult:
    """What :func:`compress` returns.

    Attributes
    ----------
    compressed_data : bytes
        The frame (header, payload, checksum); decodes alone.
    strategy : CompressionStrategy
        The strategy that produced it (for ``ADAPTIVE``, the codec the engine chose).
    original_size, compressed_size : int
        Bytes of the serialized input and of the frame.
    compression_ratio : float
        ``compressed_size / original_size``.
    checksum : str
        Hex content digest the frame carries (XXH3-128 of the serialized input).
    lossless : bool
    metadata : dict
    """

    compressed_data: bytes
    strategy: CompressionStrategy
    original_size: int
    compressed_size: int
    compression_ratio: float
    checksum: str
    lossless: bool
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def space_saved_bytes(self) -> int:
        return self.original_size - self.compressed_size


@dataclass(frozen=True)
class DecompressionResult:
    """What :func:`decompress` returns: the data, and whether its checksum held.

    A damaged frame gives ``success=False``, ``checksum_valid=False``, ``data=None``
    and the reason in ``error`` (:func:`decompress` never returns wrong data).
    """

    data: Any
    success: bool
    checksum_valid: bool
    strategy: CompressionStrategy
    error: str | None = None


class DocumentedCompressionEngine:
    """The documented ``compress`` / ``decompress`` / ``get_statistics`` over a :class:`CompressionEngine`.

    >>> engine = DocumentedCompressionEngine()
    >>> result = engine.compress({"text": "hello " * 100}, CompressionStrategy.ZSTD)
    >>> result.strategy, result.compressed_size < result.original_size
    (<CompressionStrategy.ZSTD: 'zstd'>, True)
    >>> engine.decompress(result).data == {"text": "hello " * 100}
    True
    """

    def __init__(self, engine: CompressionEngine | None = None, *, default_strategy: str = "adaptive") -> None:
        self.engine = engine if engine is not None else CompressionEngine()
        self.default_strategy = CompressionStrategy(default_strategy)
        self._lock = threading.Lock()
        self._usage: dict[str, int] = {}
        self._n = self._bytes_in = self._bytes_out = 0

    def compress(self, data: Any, strategy: CompressionStrategy | str | None = None) -> CompressionResult:
        """Compress ``data`` with ``strategy`` (the default strategy when ``None``)."""
        s = self.default_strategy if strategy is None else _strategy(strategy)
        codec, lossy, kind = _CODECS[s]
        frame = self.engine.compress(data, kind=kind, allow_loss=lossy, codec=codec)
        header = read_header(frame)
        codec_name = codec_for_frame_id(header.codec_id).codec_id
        if s is CompressionStrategy.ADAPTIVE:
            s = _STRATEGY_OF_CODEC.get(codec_name, CompressionStrategy.ADAPTIVE)
        original = header.original_length
        result = CompressionResult(
            compressed_data=frame,
            strategy=s,
            original_size=original,
            compressed_size=len(frame),
            compression_ratio=len(frame) / original if original else 1.0,
            checksum=header.content_digest.hex(),
            lossless=not lossy,
            metadata={"codec": codec_name},
        )
        with self._lock:
            self._usage[s.value] = self._usage.get(s.value, 0) + 1
            self._n += 1
            self._bytes_in += original
            self._bytes_out += len(frame)
        return result

    def decompress(self, result: CompressionResult | bytes) -> DecompressionResult:
        """Decode and verify; damage is reported in the result, never returned as data."""
        frame = result.compressed_data if isinstance(result, CompressionResult) else result
        strategy = result.strategy if isinstance(result, CompressionResult) else CompressionStrategy.ADAPTIVE
        try:
            data = self.engine.decompress(frame)
        except CorruptDataError as exc:
            return DecompressionResult(None, False, False, strategy, str(exc))
        return DecompressionResult(data, True, True, strategy)

    def get_statistics(self) -> dict[str, Any]:
        """``total_compressions``, ``overall_compression_ratio`` (fraction saved),
        ``space_saved_bytes``, ``strategy_usage``, and the engine's own counters."""
        with self._lock:
            n, bytes_in, bytes_out, usage = self._n, self._bytes_in, self._bytes_out, dict(self._usage)
        return documented_stats(n, bytes_in, bytes_out, usage, self.engine.get_statistics())


def documented_stats(
    n: int, bytes_in: int, bytes_out: int, usage: dict[str, int], engine_stats: dict[str, Any]
) -> dict[str, Any]:
    """Merge this face's counters with the engine's per-codec counters, in the documented keys."""
    for codec, c in engine_stats.get("codecs", {}).items():
        name = _STRATEGY_OF_CODEC.get(codec)
        key = name.value if name is not None else codec
        usage[key] = usage.get(key, 0) + c["count"]
        n += c["count"]
        bytes_in += c["bytes_in"]
        bytes_out += c["bytes_out"]
    return {
        "total_compressions": n,
        "overall_compression_ratio": 1.0 - bytes_out / bytes_in if bytes_in else 0.0,
        "space_saved_bytes": bytes_in - bytes_out,
        "strategy_usage": usage,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "engine": engine_stats,
    }


def _strategy(strategy: CompressionStrategy | str) -> CompressionStrategy:
    try:
        return CompressionStrategy(getattr(strategy, "value", strategy))
    except ValueError:
        known = ", ".join(s.value for s in CompressionStrategy)
        raise ValueError(f"strategy: expected one of {known}, got {strategy!r}") from None


_default: DocumentedCompressionEngine | None = None
_default_lock = threading.Lock()


def _default_engine() -> DocumentedCompressionEngine:
    global _default
    with _default_lock:
        if _default is None:
            _default = DocumentedCompressionEngine()
        return _default


def compress(data: Any, strategy: CompressionStrategy | str | None = None) -> CompressionResult:
    """Compress with a module-wide engine (see :class:`DocumentedCompressionEngine`).

    >>> from memstrata.optimization import compress, decompress, CompressionStrategy
    >>> decompress(compress(b"abc" * 100, CompressionStrategy.LZ4)).data == b"abc" * 100
    True
    """
    return _default_engine().compress(data, strategy)


def decompress(result: CompressionResult | bytes) -> DecompressionResult:
    """Decompress and verify a :class:`CompressionResult` (or a bare frame)."""
    return _default_engine().decompress(result)
