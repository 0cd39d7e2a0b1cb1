"""The compact, self-verifying blob a trace is stored as.

Small traces are the common case, so the envelope is 11 bytes or less, not the
19-27 of a full codec frame. Since version 2 a blob is a compact frame of
``memstrata.codecs`` (:func:`~memstrata.codecs.encode_compact`, documented in
``docs/format.md``) whose tag is the encoding: head, length, payload, 8-byte
check. The dictionary is named by the row's ``dictionary_version`` column, not
in the blob, and the check binds the blob to that dictionary's digest, so a
blob read with another row's version fails verification. :meth:`BlobCodec.decode`
therefore takes the row's version.

Version 1 blobs (written before) still decode; their layout (integers
little-endian, varints LEB128)::

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
from typing import Any

from memstrata._varint import decode_varint
from memstrata.codecs import COMPACT_VERSION, decode_compact, digest, encode_compact, register_dictionary
from memstrata.errors import CorruptDataError

__all__ = ["BLOB_VERSION", "ENC_JSON", "ENC_MSGPACK", "BlobCodec"]

BLOB_VERSION = COMPACT_VERSION  # what encode writes; 1 is still read
_V1 = 1
ENC_JSON = 0
ENC_MSGPACK = 1
_COMP_NONE = 0
_COMP_ZSTD = 1
_CHECKSUM = 8
_MIN_SIZE = 2 + _CHECKSUM


def _blob_bytes(blob: Any) -> bytes:
    """``blob`` as bytes, if it is bytes-like and long enough to be a blob of any version."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise CorruptDataError(f"trace blob: expected bytes, got {type(blob).__name__}")
    if len(blob) < _MIN_SIZE:
        raise CorruptDataError(f"trace blob: {len(blob)} bytes is shorter than the smallest blob ({_MIN_SIZE})")
    return bytes(blob)


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

    # ---------------------------------------------------------- dictionaries --

    def add_dictionary(self, version: int, dictionary: bytes, expected_digest: bytes | None = None) -> bytes:
        """Make a dictionary version usable; returns its digest.

        With ``expected_digest`` (as stored), a mismatch marks the version corrupt:
        blobs that use it raise ``CorruptDataError`` when read.
        """
        if not isinstance(dictionary, bytes):  # a damaged row may hold any SQLite type
            self._corrupt[version] = "its stored bytes are not a dictionary"
            return b""
        d = digest(dictionary)
        if expected_digest is not None and (not isinstance(expected_digest, bytes) or expected_digest != d):
            self._corrupt[version] = "its bytes do not match their recorded digest"
            return d
        try:
            register_dictionary(dictionary)  # compact frames find dictionaries by digest
        except ValueError as exc:  # a 4-byte digest prefix shared with another registered dictionary
            self._corrupt[version] = f"it cannot be registered ({exc})"
            return d
        self._dicts[version] = (d, bytes(dictionary))
        return d

    def remove_dictionary(self, version: int) -> None:
        """Forget a dictionary version (one tried and not adopted)."""
        self._dicts.pop(version, None)
        self._local = threading.local()  # drop cached contexts of every thread

    def versions(self) -> list[int]:
        """The usable dictionary versions, 0 (none) first."""
        return sorted(self._dicts)

    def has_dictionary(self, version: int) -> bool:
        return version in self._dicts

    def dictionary_digest(self, version: int) -> bytes:
        """The digest of a usable dictionary version."""
        return self._dicts[version][0]

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

        The row keeps the version used (0: none) and passes it to :meth:`decode`.
        Data shorter than ``threshold`` bytes, or that zstd would not shrink, is
        stored as is (version 0).
        """
        d = self._dicts[version][0] if version else None
        blob, used = encode_compact(data, encoding, d, level=self.level, threshold=self.threshold)
        return blob, version if used is not None else 0

    @staticmethod
    def compressed(blob: bytes) -> bool:
        """Whether a blob holds zstd output (else the data as is)."""
        if not blob:
            return False
        if blob[0] >> 4 == _V1:
            return (blob[0] >> 2) & 0x03 == _COMP_ZSTD
        return blob[0] & 0x03 == 1

    def decode(self, blob: Any, version: int) -> tuple[int, bytes]:
        """``(encoding, serialized data)`` of a blob, verified; ``version`` is the row's dictionary version.

        Raises
        ------
        CorruptDataError
            Any damage: bad version, flags, checksum, length or dictionary.
        """
        buf = _blob_bytes(blob)
        end = len(buf)
        flags = buf[0]
        if flags >> 4 == BLOB_VERSION:
            if type(version) is not int or version not in self._dicts:
                why = self._corrupt.get(version, "it is not in this database")
                raise CorruptDataError(f"trace blob: uses zstd dictionary version {version!r}, but {why}")
            try:
                return decode_compact(buf, self._dicts[version][0] or None)
            except CorruptDataError as exc:
                raise CorruptDataError(f"trace blob: {exc}") from None
        if flags >> 4 != _V1:
            raise CorruptDataError(
                f"trace blob: unknown format version {flags >> 4} (this memstrata reads {_V1} and {BLOB_VERSION})"
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
