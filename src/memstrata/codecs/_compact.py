"""Compact frames: small records in a container that already names their dictionary.

A full frame (``_frame.py``) stands alone: it names its codec, dictionary and
content. A record kept in a container that records those itself (a trace row
with its dictionary version, an index entry with the content digest) needs none
of that in every frame; a compact frame keeps only what the container cannot
know. ``docs/format.md`` ("Compact frames") is the normative description.

Layout (varints are LEB128)::

    head      1   bits 0-1 codec (0 raw, 1 zstd), bits 2-3 tag (the container's own 2 bits,
                  e.g. the content type), bits 4-7 format (2)
    length    v   length of the original bytes
    payload   *   the original bytes (raw), or one magicless zstd frame without
                  content size, checksum or dictionary id (zstd)
    check     8   first 8 bytes of XXH3-128(head ‖ length ‖ payload
                                            ‖ dictionary digest, zstd with a dictionary
                                            ‖ context)

``context`` is what the container holds for the slot the frame sits in (its key,
the content digest): the frame only verifies under the same context and the
same dictionary, so a frame moved to another slot or read with another
dictionary raises :class:`~memstrata.errors.CorruptDataError`. The check is
verified before any payload byte is interpreted, and the decoded length must
equal the recorded one. The format number starts at 2 because a trace blob of
version 1 (whose head byte carries 1 in the same bits) may sit in the same
column.
"""

from __future__ import annotations

from threading import get_ident
from typing import Any

from memstrata._varint import decode_varint, encode_varint
from memstrata.codecs._dictionaries import get_dictionary
from memstrata.codecs._hash import digest
from memstrata.codecs._quick import zstd_decompressor
from memstrata.errors import CorruptDataError

__all__ = ["COMPACT_CODEC_RAW", "COMPACT_CODEC_ZSTD", "COMPACT_VERSION", "decode_compact", "encode_compact"]

COMPACT_VERSION = 2
COMPACT_CODEC_RAW = 0
COMPACT_CODEC_ZSTD = 1
CHECK_SIZE = 8
_MIN_SIZE = 2 + CHECK_SIZE  # head, a one-byte length, no payload, the check
SMALL_RECORD = 1024  # the record size zstd's parameters are chosen for (larger ones work, a little slower)

# zstd contexts are not thread-safe: one per (thread, dictionary digest, level); bounded, as
# threads and dictionaries come and go in a long-running process
_MAX_CONTEXTS = 256
_CCTX: dict[tuple[int, bytes | None, int], Any] = {}


def _compressor(dictionary: bytes | None, level: int) -> Any:
    key = (get_ident(), dictionary, level)
    c = _CCTX.get(key)
    if c is None:
        import zstandard

        raw = b"" if dictionary is None else get_dictionary(dictionary)
        # tables sized for small records and this dictionary, not for unknown sizes: the
        # dictionary's tables stay smaller and warmer when one engine switches between shapes
        params = zstandard.ZstdCompressionParameters.from_level(
            level,
            source_size=SMALL_RECORD,
            dict_size=len(raw),
            format=zstandard.FORMAT_ZSTD1_MAGICLESS,
            write_content_size=False,
            write_checksum=False,
            write_dict_id=False,
        )
        if dictionary is None:
            c = zstandard.ZstdCompressor(compression_params=params)
        else:
            zd = zstandard.ZstdCompressionDict(raw)
            zd.precompute_compress(compression_params=params)
            c = zstandard.ZstdCompressor(dict_data=zd, compression_params=params)
        if len(_CCTX) >= _MAX_CONTEXTS:
            _CCTX.clear()
        _CCTX[key] = c
    return c


def _decompressor(dictionary: bytes | None) -> Any:
    return zstd_decompressor(dictionary)  # one cache with the frames' decompressors


def encode_compact(
    data: bytes,
    tag: int = 0,
    dictionary: bytes | None = None,
    *,
    level: int = 3,
    context: bytes = b"",
    threshold: int = 0,
) -> tuple[bytes, bytes | None]:
    """A compact frame of ``data``; returns ``(frame, dictionary digest the frame needs, or None)``.

    Parameters
    ----------
    data : bytes
        The original bytes (a serialized record).
    tag : int
        0-3, kept in the head for the container (e.g. which serialization ``data`` is).
    dictionary : bytes, optional
        16-byte digest of a registered zstd dictionary to compress with.
    level : int
        zstd level.
    context : bytes
        What the container holds for this frame's slot; decoding needs the same.
    threshold : int
        Data shorter than this is stored raw. Data whose zstd payload is not
        smaller than itself is stored raw too; a raw frame needs no dictionary,
        and the returned digest is then ``None``: the container records that.

    Examples
    --------
    >>> frame, used = encode_compact(b"hello " * 20, context=b"key-1")
    >>> used is None, decode_compact(frame, None, context=b"key-1")
    (True, (0, b'hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello hello '))
    """
    if not 0 <= tag <= 3:
        raise ValueError(f"tag: expected 0-3, got {tag}")
    return build_compact(data, tag, dictionary, level, context, threshold)


_ZSTD_HEADS = [bytes((COMPACT_VERSION << 4 | tag << 2 | COMPACT_CODEC_ZSTD,)) for tag in range(4)]


def build_compact(
    data: Any, tag: int, dictionary: bytes | None, level: int, context: bytes, threshold: int
) -> tuple[bytes, bytes | None]:
    """:func:`encode_compact` without its argument checks, all positional: the per-record hot path."""
    n = len(data)
    if n >= threshold:
        c = _CCTX.get((get_ident(), dictionary, level)) or _compressor(dictionary, level)
        payload = c.compress(data)
        if len(payload) < n:
            size = bytes(((n & 0x7F) | 0x80, n >> 7)) if 0x80 <= n < 0x4000 else encode_varint(n)
            body = _ZSTD_HEADS[tag] + size + payload
            return body + digest(body + (context if dictionary is None else dictionary + context))[:CHECK_SIZE], dictionary
    body = bytes((COMPACT_VERSION << 4 | tag << 2 | COMPACT_CODEC_RAW,)) + encode_varint(n) + data
    return body + digest(body + context)[:CHECK_SIZE], None


def decode_compact(frame: Any, dictionary: bytes | None, *, context: bytes = b"") -> tuple[int, bytes]:
    """``(tag, original bytes)`` of a compact frame, verified under ``dictionary`` and ``context``.

    ``dictionary`` is the digest the container recorded for the frame (``None``
    when :func:`encode_compact` returned ``None``); raw frames ignore it.

    Raises
    ------
    CorruptDataError
        Any damage: unknown format, bad head, check mismatch (a flipped bit, a
        frame moved to another slot or read with another dictionary), a length
        that does not match, or a dictionary that is not registered.
    """
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise CorruptDataError(f"compact frame: expected bytes, got {type(frame).__name__}")
    buf = bytes(frame)
    end = len(buf)
    if end < _MIN_SIZE:
        raise CorruptDataError(f"compact frame: {end} bytes is shorter than the smallest frame ({_MIN_SIZE})")
    head = buf[0]
    if head >> 4 != COMPACT_VERSION:
        raise CorruptDataError(f"compact frame: unknown format {head >> 4} (this memstrata reads {COMPACT_VERSION})")
    codec = head & 0x03
    if codec > COMPACT_CODEC_ZSTD:
        raise CorruptDataError(f"compact frame: unknown codec {codec}")
    body_end = end - CHECK_SIZE
    n, pos = decode_varint(buf, 1, body_end, "compact frame")
    body = buf[:body_end]
    tail = dictionary + context if codec == COMPACT_CODEC_ZSTD and dictionary is not None else context
    if digest(body + tail)[:CHECK_SIZE] != buf[body_end:]:
        raise CorruptDataError(
            "compact frame: checksum mismatch (corrupt or truncated frame, or read with another dictionary or context)"
        )
    if codec == COMPACT_CODEC_RAW:
        data = buf[pos:body_end]
    elif n == 0:
        data = b""
    else:
        try:
            d = _decompressor(dictionary)
        except KeyError as exc:
            raise CorruptDataError(f"compact frame: {exc.args[0]}") from None
        try:
            data = d.decompress(buf[pos:body_end], max_output_size=n)
        except Exception as exc:  # verified bytes zstd cannot read: never guess
            raise CorruptDataError(f"compact frame: zstd failed on a verified payload ({exc})") from None
    if len(data) != n:
        raise CorruptDataError(f"compact frame: decoded {len(data)} bytes, its head says {n}")
    return (head >> 2) & 0x03, data
