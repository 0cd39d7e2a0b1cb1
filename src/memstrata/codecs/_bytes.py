"""Lossless byte codecs: raw, lz4, zstd (with trained dictionaries), zlib, blosc2.

Each wraps its library; none reimplements compression. Library-level framing
that the memstrata frame already provides (magic numbers, content sizes,
checksums, dictionary ids) is switched off, which saves 10-20 bytes per small
record.
"""

from __future__ import annotations

import zlib
from threading import get_ident
from typing import Any

import numpy as np

from memstrata.codecs._dictionaries import get_dictionary, register_dictionary
from memstrata.codecs._frame import FrameHeader
from memstrata.codecs._quick import zstd_decompressor
from memstrata.codecs._registry import Codec, register_codec
from memstrata.errors import CorruptDataError

__all__ = ["Blosc2Codec", "LZ4Codec", "RawCodec", "ZlibCodec", "ZstdCodec"]

# inputs above this are split into independently compressed chunks (lz4 and
# blosc2 take at most ~2 GiB per call)
CHUNK_BYTES = 256 * 1024 * 1024


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{name}: expected an int in [{lo}, {hi}], got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name}: expected an int in [{lo}, {hi}], got {value}")
    return value


def _chunked(buf: Any, compress: Any) -> tuple[bytes, dict[str, Any] | None]:
    """Compress in chunks of CHUNK_BYTES, each prefixed by its 4-byte length."""
    n = len(buf)
    if n <= CHUNK_BYTES:
        return compress(buf), None
    mv = memoryview(buf).cast("B")
    parts = []
    for start in range(0, n, CHUNK_BYTES):
        c = compress(mv[start : start + CHUNK_BYTES])
        parts.append(len(c).to_bytes(4, "little"))
        parts.append(c)
    return b"".join(parts), {"chunk": CHUNK_BYTES}


def _blosc2_threads(nbytes: int) -> int:
    """Threads for one blosc2 call on ``nbytes``: one below 1 MiB.

    A blosc2 call allowed several threads starts a thread pool of its own
    each time (~100 us measured), more than the work on a record-sized buffer.
    """
    import blosc2

    return 1 if nbytes < (1 << 20) else blosc2.nthreads


def _unchunked(payload: memoryview, header: FrameHeader, decompress: Any) -> Any:
    chunk = header.meta.get("chunk")
    if chunk is None:
        return decompress(payload, header.original_length)
    out = bytearray(header.original_length)
    pos = written = 0
    while pos < len(payload):
        clen = int.from_bytes(payload[pos : pos + 4], "little")
        pos += 4
        part = decompress(payload[pos : pos + clen], min(chunk, header.original_length - written))
        out[written : written + len(part)] = part
        written += len(part)
        pos += clen
    if written != header.original_length:
        raise CorruptDataError("frame: chunked payload decoded to the wrong length")
    return out


@register_codec
class RawCodec(Codec):
    """No compression: the payload is the bytes themselves (for tiny values).

    >>> from memstrata.codecs import RawCodec, decode
    >>> frame = RawCodec().encode({"a": 1})
    >>> decode(frame), len(frame)
    ({'a': 1}, 18)
    """

    codec_id = "raw"
    frame_id = 0
    implicit_digest_ok = True

    def _encode(self, buf: Any, meta: dict[str, Any]) -> tuple[bytes, None, None]:
        return buf if type(buf) is bytes else bytes(buf), None, None

    @classmethod
    def _decode(cls, payload: memoryview, header: FrameHeader, dictionary: Any) -> Any:
        return payload


class _LevelCodec(Codec):
    """A byte codec whose one parameter is ``level``, an int in ``_levels`` (lz4, zlib)."""

    implicit_digest_ok = True
    _levels: tuple[int, int]

    def __init__(self, level: int) -> None:
        self.level = _check_int("level", level, *self._levels)

    def _params(self) -> dict[str, Any]:
        return {"level": self.level}


@register_codec
class LZ4Codec(_LevelCodec):
    """lz4 block compression: the fastest codec; ``level`` > 0 selects lz4-HC.

    Parameters
    ----------
    level : int
        0 (fast mode) or 1-12 (high-compression mode, slower to encode, same speed
        to decode).
    """

    codec_id = "lz4"
    frame_id = 1
    _levels = (0, 12)

    def __init__(self, level: int = 0) -> None:
        super().__init__(level)

    def block(self, buf: Any) -> bytes:
        """One lz4 block of ``buf`` (no size prefix): the whole payload of a value up to ``CHUNK_BYTES`` long."""
        import lz4.block

        if self.level:
            return lz4.block.compress(buf, mode="high_compression", compression=self.level, store_size=False)
        return lz4.block.compress(buf, store_size=False)

    def _encode(self, buf: Any, meta: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None, None]:
        payload, extra = _chunked(buf, self.block)
        return payload, extra, None

    @classmethod
    def _decode(cls, payload: memoryview, header: FrameHeader, dictionary: Any) -> Any:
        import lz4.block

        def decompress(p: Any, n: int) -> bytes:
            return lz4.block.decompress(p, uncompressed_size=n) if n else b""

        return _unchunked(payload, header, decompress)


def _zstd_params(level: int) -> Any:
    import zstandard

    return zstandard.ZstdCompressionParameters.from_level(
        level,
        format=zstandard.FORMAT_ZSTD1_MAGICLESS,
        write_content_size=False,
        write_checksum=False,
        write_dict_id=False,
    )


@register_codec
class ZstdCodec(Codec):
    """zstd, optionally with a trained dictionary for small records.

    Parameters
    ----------
    level : int
        -7 (fastest) to 22 (smallest); 3 is zstd's default.
    dictionary : bytes or str, optional
        The 16-byte digest (or its hex) of a dictionary registered with
        :func:`~memstrata.codecs.register_dictionary` or trained with
        :func:`~memstrata.codecs.train_dictionary`. Frames name it, and decoding
        needs it registered.

    Examples
    --------
    >>> import json
    >>> from memstrata.codecs import ZstdCodec, train_dictionary, decode
    >>> samples = [json.dumps({"trace_id": i, "metric": "loss", "value": i / 7}).encode() for i in range(500)]
    >>> codec = ZstdCodec(level=3, dictionary=train_dictionary(samples, 4096))
    >>> frame = codec.encode(samples[0])
    >>> decode(frame) == samples[0], len(frame) < len(samples[0])
    (True, True)
    """

    codec_id = "zstd"
    frame_id = 2
    implicit_digest_ok = True

    def __init__(self, level: int = 3, dictionary: bytes | str | None = None) -> None:
        self.level = _check_int("level", level, -7, 22)
        if isinstance(dictionary, str):
            try:
                dictionary = bytes.fromhex(dictionary)
            except ValueError:
                raise ValueError("dictionary: expected a 32-character hex digest") from None
        if dictionary is not None:
            if not isinstance(dictionary, (bytes, bytearray)) or len(dictionary) != 16:
                raise ValueError("dictionary: expected the 16-byte digest of a registered dictionary")
            dictionary = bytes(dictionary)
            get_dictionary(dictionary)  # fail now, not at the first encode
        self.dictionary: bytes | None = dictionary
        self._cctx: dict[int, Any] = {}

    def _params(self) -> dict[str, Any]:
        return {"level": self.level, "dictionary": None if self.dictionary is None else self.dictionary.hex()}

    @classmethod
    def with_dictionary_bytes(cls, dictionary: bytes, level: int = 3) -> ZstdCodec:
        """Register raw dictionary bytes and build a codec that uses them."""
        return cls(level=level, dictionary=register_dictionary(dictionary))

    def _encode(self, buf: Any, meta: dict[str, Any]) -> tuple[bytes, None, bytes | None]:
        c = self._cctx.get(get_ident())
        if c is None:
            c = self._compressor()
        return c.compress(buf), None, self.dictionary

    def _compressor(self) -> Any:
        # one compressor per thread: zstandard contexts must not be shared while compressing
        tid = get_ident()
        c = self._cctx.get(tid)
        if c is None:
            import zstandard

            params = _zstd_params(self.level)
            if self.dictionary is None:
                c = zstandard.ZstdCompressor(compression_params=params)
            else:
                d = zstandard.ZstdCompressionDict(get_dictionary(self.dictionary))
                d.precompute_compress(compression_params=params)
                c = zstandard.ZstdCompressor(dict_data=d, compression_params=params)
            self._cctx[tid] = c
        return c


    @classmethod
    def _decode(cls, payload: memoryview, header: FrameHeader, dictionary: Any) -> Any:
        n = header.original_length
        if n == 0:
            return b""
        return zstd_decompressor(header.dictionary_digest, dictionary).decompress(payload, max_output_size=n)


@register_codec
class ZlibCodec(_LevelCodec):
    """zlib's deflate (raw stream, no zlib header), levels 0-9."""

    codec_id = "zlib"
    frame_id = 3
    _levels = (0, 9)

    def __init__(self, level: int = 6) -> None:
        super().__init__(level)

    def _encode(self, buf: Any, meta: dict[str, Any]) -> tuple[bytes, None, None]:
        c = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        return c.compress(buf) + c.flush(), None, None

    @classmethod
    def _decode(cls, payload: memoryview, header: FrameHeader, dictionary: Any) -> Any:
        d = zlib.decompressobj(-15)
        out = d.decompress(payload, header.original_length)
        if not d.eof or d.unconsumed_tail or d.unused_data:
            raise CorruptDataError("frame: deflate stream does not end where the header says")
        return out


_BLOSC2_CODECS = ("blosclz", "lz4", "lz4hc", "zlib", "zstd")
_BLOSC2_FILTERS = ("auto", "shuffle", "bitshuffle", "none")


@register_codec
class Blosc2Codec(Codec):
    """blosc2 for numeric arrays: byte- or bit-shuffle by item size, then compress.

    Parameters
    ----------
    clevel : int
        0-9.
    codec : {"zstd", "lz4", "lz4hc", "blosclz", "zlib"}
        The compressor inside blosc2.
    filter : {"auto", "shuffle", "bitshuffle", "none"}
        ``"auto"`` shuffles bytes for arrays of items wider than one byte, and
        does nothing for bytes and serialized values.
    """

    codec_id = "blosc2"
    frame_id = 4

    def __init__(self, clevel: int = 5, codec: str = "zstd", filter: str = "auto") -> None:
        self.clevel = _check_int("clevel", clevel, 0, 9)
        if codec not in _BLOSC2_CODECS:
            raise ValueError(f"codec: expected one of {_BLOSC2_CODECS}, got {codec!r}")
        if filter not in _BLOSC2_FILTERS:
            raise ValueError(f"filter: expected one of {_BLOSC2_FILTERS}, got {filter!r}")
        self.codec = codec
        self.filter = filter

    def _params(self) -> dict[str, Any]:
        return {"clevel": self.clevel, "codec": self.codec, "filter": self.filter}

    def _encode(self, buf: Any, meta: dict[str, Any]) -> tuple[bytes, dict[str, Any] | None, None]:
        import blosc2

        typesize = np.dtype(meta["dtype"]).itemsize if "dtype" in meta else 1
        typesize = min(max(typesize, 1), 255)
        name = self.filter
        if name == "auto":
            name = "shuffle" if typesize > 1 else "none"
        filt = {"shuffle": blosc2.Filter.SHUFFLE, "bitshuffle": blosc2.Filter.BITSHUFFLE, "none": blosc2.Filter.NOFILTER}[name]
        cparams = {
            "codec": getattr(blosc2.Codec, self.codec.upper()),
            "clevel": self.clevel,
            "typesize": typesize,
            "filters": [filt],
            "filters_meta": [0],
        }

        def compress(b: Any) -> bytes:
            return blosc2.compress2(b, nthreads=_blosc2_threads(memoryview(b).nbytes), **cparams)

        payload, extra = _chunked(buf, compress)
        return payload, extra, None

    @classmethod
    def _decode(cls, payload: memoryview, header: FrameHeader, dictionary: Any) -> Any:
        import blosc2

        def decompress(p: Any, n: int) -> Any:
            if blosc2.get_cbuffer_sizes(p)[0] != n:
                raise CorruptDataError("frame: blosc2 chunk size disagrees with the header")
            dst = bytearray(n)
            if n:
                blosc2.decompress2(p, dst=dst, nthreads=_blosc2_threads(n))
            return dst

        return _unchunked(payload, header, decompress)
