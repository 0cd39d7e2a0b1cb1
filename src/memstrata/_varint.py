"""Unsigned LEB128 varints, as the frame and trace-blob formats store lengths."""

from __future__ import annotations

from typing import Any

from memstrata.errors import CorruptDataError


def encode_varint(n: int) -> bytes:
    """Encode ``0 <= n < 2**64`` in 1-10 bytes, 7 bits per byte, low bits first."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_varint(buf: Any, pos: int, end: int, what: str) -> tuple[int, int]:
    """Decode the varint at ``buf[pos:end]``; return ``(value, next_pos)``.

    Raises ``CorruptDataError`` naming ``what`` when the varint runs past ``end``
    or encodes more than 64 bits.
    """
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise CorruptDataError(f"{what}: malformed length field")
        b = buf[pos]
        pos += 1
        if shift == 63 and (b & 0x7F) > 1:  # more than 64 bits
            raise CorruptDataError(f"{what}: malformed length field")
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
