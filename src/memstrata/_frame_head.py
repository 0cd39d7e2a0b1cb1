"""The head of a frame (magic, version, codec id, flags) and its dictionary reference: one statement of their checks.

Both frame parsers use it, so that a bad head raises the same error with the same
message on either path: ``codecs/_frame.py`` (the pure-Python reference, and the
fallback when the extensions are not built) calls :func:`check_head` on every
frame; ``native/frames.pyx`` tests the same conditions in C and calls it only when
one of them fails. Both resolve a frame's dictionary reference with
:func:`resolve_dictionary`.
"""

from __future__ import annotations

from typing import Any

from memstrata.errors import CorruptDataError

__all__ = ["FLAG_RESERVED", "FORMAT_VERSION", "MAGIC", "MIN_SIZE", "FrameVersionError", "check_head", "resolve_dictionary"]

MAGIC = b"\x89M"
FORMAT_VERSION = 1
FLAG_RESERVED = 0x80  # the flag bit no version-1 frame sets
#: magic, version, codec id, flags, a one-byte length, the 8-byte checksum (empty payload,
#: implicit digest, no meta or dictionary)
MIN_SIZE = 2 + 1 + 1 + 1 + 1 + 8


class FrameVersionError(CorruptDataError):
    """A frame was written by a newer format version than this memstrata reads."""


def check_head(head: Any, size: int) -> None:
    """Raise the error a frame of ``size`` bytes beginning with ``head`` has, if its head is bad.

    ``head`` holds the frame's first bytes (at least five when ``size >= MIN_SIZE``).
    Raises :class:`~memstrata.errors.CorruptDataError`, or :class:`FrameVersionError`
    for a frame of a newer format version; returns ``None`` for a good head.
    """
    if size < MIN_SIZE:
        raise CorruptDataError(f"frame: {size} bytes is shorter than the smallest frame ({MIN_SIZE} bytes)")
    if head[0] != MAGIC[0] or head[1] != MAGIC[1]:
        raise CorruptDataError("frame: bad magic (not a memstrata frame)")
    version = head[2]
    if version > FORMAT_VERSION:
        raise FrameVersionError(
            f"frame: format version {version} is newer than this memstrata reads "
            f"(up to {FORMAT_VERSION}); upgrade memstrata to decode it"
        )
    if version != FORMAT_VERSION:
        raise CorruptDataError(f"frame: unknown format version {version}")
    if head[4] & FLAG_RESERVED:
        raise CorruptDataError(f"frame: reserved flag bits set ({head[4]:#04x})")


def resolve_dictionary(ref: bytes, lookup: Any) -> tuple[bytes, bytes]:
    """``(digest16, dictionary)`` of the zstd dictionary a frame names by the 4 bytes ``ref``.

    ``lookup(ref)`` returns that pair or ``None`` (``lookup`` may be ``None``: no
    dictionary is known). Raises :class:`~memstrata.errors.CorruptDataError` when the
    dictionary is not known here.
    """
    found = lookup(ref) if lookup is not None else None
    if found is None:
        raise CorruptDataError(
            f"frame: names zstd dictionary {ref.hex()}…, which is not registered here "
            "(register it with memstrata.codecs.register_dictionary) or the frame is corrupt"
        )
    return found
