"""The frame: the self-verifying envelope around every encoded value.

Layout (format version 1; all integers little-endian; ``docs/format.md`` is the
normative description)::

    magic         2   b"\\x89M"
    version       1   1
    codec id      1   numeric id of the codec that wrote the payload
    flags         1   bits 0-2 kind, 3 long digest, 4 meta, 5 dictionary,
                      6 implicit digest, 7 zero
    orig length   v   LEB128 varint: length of the original bytes
    [meta length  v   varint, when the meta flag is set]
    [dict ref     4   first 4 bytes of the zstd dictionary's digest, dictionary flag]
    [content dig. 8|16  XXH3-128(original), first 8 bytes or all 16 (long-digest
                      flag); absent with the implicit-digest flag]
    [meta         m   msgpack map: dtype/shape of arrays, codec parameters]
    payload       *   the codec's output
    checksum      8   first 8 bytes of XXH3-128(every byte above
                      ‖ dictionary digest, when named
                      ‖ content digest, when implicit)

The checksum covers the header, the content digest, the codec parameters, the
payload and the full digest of a named dictionary. With a stored digest it is
verified before any payload byte is interpreted. Small lossless frames (at most
64 KiB, codecs raw/lz4/zstd/zlib, whose decoders are safe on any input) may
leave the digest implicit to save its 8 bytes: the payload is decoded (bounded
by the original length), its digest computed, and the checksum verified over
it, so the check also covers the decoder's output.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from memstrata._frame_head import FORMAT_VERSION, MAGIC, FrameVersionError, check_head, resolve_dictionary
from memstrata._varint import decode_varint, encode_varint
from memstrata.codecs._hash import digest
from memstrata.errors import CorruptDataError

__all__ = [
    "FORMAT_VERSION",
    "KIND_ARRAY",
    "KIND_BYTES",
    "KIND_VALUE",
    "MAGIC",
    "FrameHeader",
    "FrameVersionError",
    "build_frame",
    "parse_frame",
]

CHECKSUM_SIZE = 8

# what the decoded payload is
KIND_BYTES = 0  # bytes, returned as ``bytes``
KIND_VALUE = 1  # a value serialized with ``memstrata.serialize``
KIND_ARRAY = 2  # raw C-order bytes of a numpy array; dtype and shape in meta
KIND_OBJECT = 3  # a codec-specific object (lossy arrays, sparse, graphs); the codec decodes it
_KIND_NAMES = {KIND_BYTES: "bytes", KIND_VALUE: "value", KIND_ARRAY: "array", KIND_OBJECT: "object"}

_FLAG_KIND = 0x07
FLAG_LONG_DIGEST = 0x08
FLAG_META = 0x10
FLAG_DICT = 0x20
FLAG_IMPLICIT = 0x40
IMPLICIT_MAX_LENGTH = 65536
IMPLICIT_CODECS = (0, 1, 2, 3)  # raw, lz4, zstd, zlib


try:  # compiled twins of build_frame / parse_frame (same bytes, same errors)
    from memstrata._native import frames as _native
except ImportError:  # pragma: no cover - source checkout without compiled extensions
    _native = None  # type: ignore[assignment]  # the pure-Python path below serves then

class FrameHeader(NamedTuple):
    """The parsed, verified header of a frame (see :func:`memstrata.codecs.read_header`)."""

    version: int
    codec_id: int
    kind: int
    original_length: int
    content_digest: bytes  # 8 or 16 bytes stored; all 16 computed when implicit
    dictionary_ref: bytes | None  # 4 bytes or None
    meta: dict[str, Any]
    payload_offset: int
    payload_length: int
    dictionary_digest: bytes | None = None
    implicit_digest: bool = False

    @property
    def kind_name(self) -> str:
        """``"bytes"``, ``"value"``, ``"array"`` or ``"object"``."""
        return _KIND_NAMES.get(self.kind, f"kind-{self.kind}")






def _py_build_frame(
    codec_id: int,
    kind: int,
    payload: Any,
    original_length: int,
    content_digest: bytes,
    meta_bytes: bytes = b"",
    dictionary_digest: bytes | None = None,
    implicit: bool = False,
) -> bytes:
    """Assemble a frame; ``content_digest`` is 8 or 16 bytes (16 when ``implicit``), ``meta_bytes`` msgpack.

    The readable reference of the compiled ``build`` (:data:`build_frame`): same bytes, same errors.
    """
    flags = kind
    tail = b""
    if implicit:
        if len(content_digest) != 16:
            raise ValueError("content_digest: an implicit digest needs all 16 bytes")
        flags |= FLAG_IMPLICIT
        stored = b""
    else:
        if len(content_digest) not in (8, 16):
            raise ValueError("content_digest: expected 8 or 16 bytes")
        if len(content_digest) == 16:
            flags |= FLAG_LONG_DIGEST
        stored = content_digest
    parts = [b"", encode_varint(original_length)]
    if meta_bytes:
        flags |= FLAG_META
        parts.append(encode_varint(len(meta_bytes)))
    if dictionary_digest is not None:
        flags |= FLAG_DICT
        parts.append(dictionary_digest[:4])
        tail += dictionary_digest
    if implicit:
        tail += content_digest
    parts[0] = bytes((0x89, 0x4D, FORMAT_VERSION, codec_id, flags))
    parts += [stored, meta_bytes, bytes(payload)]
    body = b"".join(parts)
    return body + digest(body + tail)[:CHECKSUM_SIZE]


#: Assemble a frame (see :func:`_py_build_frame`): the compiled twin when built, else the reference.
build_frame = _native.build if _native is not None else _py_build_frame


def _py_checksum_matches(frame: Any, tail: bytes) -> bool:
    mv = memoryview(frame).cast("B")
    if len(mv) < CHECKSUM_SIZE:
        return False
    return digest(bytes(mv[:-CHECKSUM_SIZE]) + tail)[:CHECKSUM_SIZE] == bytes(mv[-CHECKSUM_SIZE:])


def _py_parse_frame(frame: Any, dictionary_lookup: Any = None, *, verify: bool = True) -> tuple[FrameHeader, bytes | None]:
    """Parse and verify a frame; returns ``(header, dictionary bytes or None)``.

    ``dictionary_lookup(ref4) -> (digest16, dictionary) | None`` resolves a
    dictionary reference. Raises :class:`CorruptDataError` (or its subclass
    :class:`FrameVersionError`) on any inconsistency.
    """
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise TypeError(f"frame: expected bytes-like, got {type(frame).__name__}")
    mv = memoryview(frame)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    end = len(mv)
    check_head(mv, end)
    version = mv[2]
    codec_id = mv[3]
    flags = mv[4]
    implicit = bool(flags & FLAG_IMPLICIT)
    body_end = end - CHECKSUM_SIZE
    original_length, pos = decode_varint(mv, 5, body_end, "frame")
    if implicit and (
        flags & FLAG_LONG_DIGEST
        or (flags & _FLAG_KIND) > KIND_ARRAY
        or codec_id not in IMPLICIT_CODECS
        or original_length > IMPLICIT_MAX_LENGTH
    ):
        raise CorruptDataError("frame: implicit content digest on a frame that cannot have one")
    meta_length = 0
    if flags & FLAG_META:
        meta_length, pos = decode_varint(mv, pos, body_end, "frame")
    ref = None
    dict_digest = None
    dictionary = None
    if flags & FLAG_DICT:
        if pos + 4 > body_end:
            raise CorruptDataError("frame: truncated (header runs past the end)")
        ref = bytes(mv[pos : pos + 4])
        pos += 4
        dict_digest, dictionary = resolve_dictionary(ref, dictionary_lookup)
    digest_length = 0 if implicit else 16 if flags & FLAG_LONG_DIGEST else 8
    if pos + digest_length > body_end or meta_length > body_end - pos - digest_length:
        raise CorruptDataError("frame: truncated (header runs past the end)")
    content_digest = bytes(mv[pos : pos + digest_length])
    pos += digest_length
    meta_start = pos
    pos += meta_length
    if verify and not implicit:
        body = mv[:body_end]
        expected = digest(body)[:CHECKSUM_SIZE] if dict_digest is None else digest(bytes(body) + dict_digest)[:CHECKSUM_SIZE]
        if mv[body_end:] != expected:
            raise CorruptDataError("frame: checksum mismatch (corrupt, truncated or spliced frame)")
    meta: dict[str, Any] = {}
    if meta_length:
        meta = _decode_meta(mv[meta_start:pos])
    header = FrameHeader(
        version,
        codec_id,
        flags & _FLAG_KIND,
        original_length,
        content_digest,
        ref,
        meta,
        pos,
        body_end - pos,
        dict_digest,
        implicit,
    )
    return header, dictionary


_meta_decoder: Any = None
_meta_encoder: Any = None


def encode_meta(meta: dict[str, Any]) -> bytes:
    """msgpack of a small JSON-like map (codec parameters, dtype, shape)."""
    global _meta_encoder
    if _meta_encoder is None:
        import msgspec

        _meta_encoder = msgspec.msgpack.Encoder()
    return _meta_encoder.encode(meta)


def _decode_meta(buf: Any) -> dict[str, Any]:
    global _meta_decoder
    if _meta_decoder is None:
        import msgspec

        _meta_decoder = msgspec.msgpack.Decoder(dict)
    try:
        return _meta_decoder.decode(buf)
    except Exception as exc:  # verified bytes that do not parse: a writer bug, still never wrong data
        raise CorruptDataError(f"frame: unreadable meta block ({exc})") from None


def checksum_matches(frame: Any, tail: bytes) -> bool:
    """Whether ``frame``'s checksum covers its body followed by ``tail`` (implicit-digest frames)."""
    if _native is None:  # pragma: no cover
        return _py_checksum_matches(frame, tail)
    return _native.checksum_matches(frame, tail)


_new_header = tuple.__new__


def parse_frame(frame: Any, dictionary_lookup: Any = None, *, verify: bool = True) -> tuple[FrameHeader, bytes | None]:
    """Parse and verify a frame; returns ``(header, dictionary bytes or None)``.

    ``dictionary_lookup(ref4) -> (digest16, dictionary) | None`` resolves a
    dictionary reference. Raises :class:`CorruptDataError` (or its subclass
    :class:`FrameVersionError`) on any inconsistency.
    """
    if _native is None:  # pragma: no cover
        return _py_parse_frame(frame, dictionary_lookup, verify=verify)
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise TypeError(f"frame: expected bytes-like, got {type(frame).__name__}")
    try:
        (version, codec_id, kind, n, content, ref, meta_start, meta_length, offset, length, dictionary, dd, implicit) = (
            _native.parse(frame, dictionary_lookup, verify)
        )
    except BufferError:
        raise CorruptDataError("frame: not a contiguous buffer") from None
    meta = _decode_meta(memoryview(frame)[meta_start : meta_start + meta_length]) if meta_length else {}
    header = _new_header(FrameHeader, (version, codec_id, kind, n, content, ref, meta, offset, length, dd, implicit))
    return header, dictionary
