"""The compact, self-verifying blob a trace is stored as.

Small traces are the common case, so the envelope is 12 bytes or less, not the
27 of a general codec frame (``memstrata.codecs``): the dictionary is named by
its version in the trace database rather than by digest, and there is no
separate content digest because the checksum already covers the payload.

Layout (version 1; integers little-endian, varints LEB128)::

    head         1   bits 0-1 encoding (0 JSON text, 1 msgpack via memstrata.serialize),
                     bits 2-3 compression (0 none, 1 zstd), bits 4-7 format version (1)
    [dict ver.   v   zstd only: version in the ``dictionaries`` table, 0 for none]
    orig length  v   length of the serialized data
    payload      *   zstd (magicless, no size, no checksum) or the data itself
    checksum     8   first 8 bytes of XXH3-128(every byte above || dictionary digest)

The checksum is verified before the payload is read, and the decompressed length
must equal the recorded one, so a flipped byte, a truncated blob, a blob moved to
another row's dictionary or a damaged dictionary raise ``CorruptDataError``.
"""

from __future__ import annotations

import threading
from threading import get_ident
from typing import Any

from memstrata._native.hashing import digest
from memstrata._varint import decode_varint, encode_varint
from memstrata.errors import CorruptDataError

__all__ = ["BLOB_VERSION", "ENC_JSON", "ENC_MSGPACK", "BlobCodec"]

BLOB_VERSION = 1
ENC_JSON = 0
ENC_MSGPACK = 1
_COMP_NONE = 0
_COMP_ZSTD = 1
_CHECKSUM = 8
_MIN_SIZE = 2 + _CHECKSUM


def _params(level: int) -> Any:
    import zstandard

    return zstandard.ZstdCompressionParameters.from_level(
        level,
        format=zstandard.FORMAT_ZSTD1_MAGICLESS,
        write_content_size=False,
        write_checksum=False,
        write_dict_id=False,
    )


class BlobCodec:
    """Encodes serialized traces into blobs and back, with versioned dictionaries.

    Thread-safe: zstd contexts are kept per thread.
    """

    def __init__(self, level: int = 3, threshold: int = 64) -> None:
        self.level = level
        self.threshold = threshold
        # version -> (digest16, dictionary bytes); version 0 is "no dictionary"
        self._dicts: dict[int, tuple[bytes, bytes]] = {0: (b"", b"")}
        self._corrupt: dict[int, str] = {}
        self._local = threading.local()
        self._cctx: dict[tuple[int, int], Any] = {}  # (thread id, version) -> compressor
        self._fixed: dict[int, tuple[bytes, bytes]] = {}  # version * 4 + encoding -> (head, dictionary digest)

    # ---------------------------------------------------------- dictionaries --

    def add_dictionary(self, version: int, dictionary: bytes, expected_digest: bytes | None = None) -> bytes:
        """Make a dictionary version usable; returns its digest.

        With ``expected_digest`` (as stored), a mismatch marks the version corrupt:
        blobs that use it raise ``CorruptDataError`` when read.
        """
        d = digest(dictionary)
        if expected_digest is not None and bytes(expected_digest) != d:
            self._corrupt[version] = "its bytes do not match their recorded digest"
            return d
        self._dicts[version] = (d, bytes(dictionary))
        return d

    def remove_dictionary(self, version: int) -> None:
        """Forget a dictionary version (one tried and not adopted)."""
        self._dicts.pop(version, None)
        self._local = threading.local()  # drop cached contexts of every thread
        self._cctx = {k: c for k, c in self._cctx.items() if k[1] != version}
        self._fixed = {k: v for k, v in self._fixed.items() if k // 4 != version}

    def has_dictionary(self, version: int) -> bool:
        return version in self._dicts

    def dictionary_digest(self, version: int) -> bytes:
        """The digest of a usable dictionary version."""
        return self._dicts[version][0]

    def _compressor(self, version: int) -> Any:
        key = (get_ident(), version)  # zstd contexts are not thread-safe: one per thread
        c = self._cctx.get(key)
        if c is None:
            import zstandard

            params = _params(self.level)
            if version == 0:
                c = zstandard.ZstdCompressor(compression_params=params)
            else:
                zd = zstandard.ZstdCompressionDict(self._dicts[version][1])
                zd.precompute_compress(compression_params=params)
                c = zstandard.ZstdCompressor(dict_data=zd, compression_params=params)
            self._cctx[key] = c
        return c

    def _decompressor(self, version: int) -> Any:
        cache = getattr(self._local, "d", None)
        if cache is None:
            cache = self._local.d = {}
        d = cache.get(version)
        if d is None:
            import zstandard

            if version == 0:
                d = zstandard.ZstdDecompressor(format=zstandard.FORMAT_ZSTD1_MAGICLESS)
            else:
                d = zstandard.ZstdDecompressor(
                    dict_data=zstandard.ZstdCompressionDict(self._dicts[version][1]),
                    format=zstandard.FORMAT_ZSTD1_MAGICLESS,
                )
            cache[version] = d
        return d

    # ---------------------------------------------------------------- blobs --

    def encode(self, data: bytes, encoding: int, version: int) -> tuple[bytes, int]:
        """Blob for serialized ``data``; returns ``(blob, dictionary version used)``.

        Data shorter than ``threshold`` bytes, or whose compressed blob (envelope
        included) would not be smaller than the data, is stored as is (version 0).
        """
        n = len(data)
        if n >= self.threshold:
            key = (get_ident(), version)
            c = self._cctx.get(key)
            payload = (c if c is not None else self._compressor(version)).compress(data)
            if len(payload) + _CHECKSUM < n:
                fixed = self._fixed.get(version * 4 + encoding)
                if fixed is None:
                    head = bytes((BLOB_VERSION << 4 | _COMP_ZSTD << 2 | encoding,)) + encode_varint(version)
                    fixed = self._fixed[version * 4 + encoding] = (head, self._dicts[version][0])
                size = bytes(((n & 0x7F) | 0x80, n >> 7)) if 0x80 <= n < 0x4000 else encode_varint(n)
                body = b"".join((fixed[0], size, payload))
                if len(body) + _CHECKSUM < n:  # the whole blob is smaller than the data, else store it as is
                    return body + digest(body + fixed[1])[:_CHECKSUM], version
        body = bytes((BLOB_VERSION << 4 | encoding,)) + encode_varint(n) + data
        return body + digest(body)[:_CHECKSUM], 0

    @staticmethod
    def compressed(blob: bytes) -> bool:
        """Whether a blob holds zstd output (else the data as is)."""
        return bool(blob) and (blob[0] >> 2) & 0x03 == _COMP_ZSTD

    def decode(self, blob: Any) -> tuple[int, bytes]:
        """``(encoding, serialized data)`` of a blob, verified.

        Raises
        ------
        CorruptDataError
            Any damage: bad version, flags, checksum, length or dictionary.
        """
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise CorruptDataError(f"trace blob: expected bytes, got {type(blob).__name__}")
        buf = bytes(blob)
        end = len(buf)
        if end < _MIN_SIZE:
            raise CorruptDataError(f"trace blob: {end} bytes is shorter than the smallest blob ({_MIN_SIZE})")
        flags = buf[0]
        if flags >> 4 != BLOB_VERSION:
            raise CorruptDataError(
                f"trace blob: unknown format version {flags >> 4} (this memstrata reads {BLOB_VERSION})"
            )
        if flags & 0x03 > ENC_MSGPACK or (flags >> 2) & 0x03 > _COMP_ZSTD:
            raise CorruptDataError(f"trace blob: bad flags {flags:#04x}")
        body_end = end - _CHECKSUM
        pos = 1
        version = 0
        compressed = (flags >> 2) & 0x03 == _COMP_ZSTD
        if compressed:
            version, pos = decode_varint(buf, pos, body_end, "trace blob")
        n, pos = decode_varint(buf, pos, body_end, "trace blob")
        if version not in self._dicts:
            why = self._corrupt.get(version, "it is not in this database")
            raise CorruptDataError(f"trace blob: uses zstd dictionary version {version}, but {why}")
        body = buf[:body_end]
        if digest(body + self._dicts[version][0])[:_CHECKSUM] != buf[body_end:]:
            raise CorruptDataError("trace blob: checksum mismatch (corrupt or truncated blob)")
        payload = buf[pos:body_end]
        if compressed:
            try:
                data = self._decompressor(version).decompress(payload, max_output_size=n) if n else b""
            except Exception as exc:  # verified bytes zstd cannot read: never guess
                raise CorruptDataError(f"trace blob: zstd failed on a verified payload ({exc})") from None
        else:
            data = payload
        if len(data) != n:
            raise CorruptDataError(f"trace blob: decoded {len(data)} bytes, header says {n}")
        return flags & 0x03, data
