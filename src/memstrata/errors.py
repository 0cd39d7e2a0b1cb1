"""Exceptions raised by memstrata.

Every error memstrata raises on purpose derives from :class:`MemstrataError`,
except argument errors, which are the built-in ``TypeError`` / ``ValueError``
(and :class:`UnknownCodecError`, which is both).
"""

from __future__ import annotations

__all__ = ["ClosedError", "CorruptDataError", "MemstrataError", "StoreLockedError", "UnknownCodecError"]


class MemstrataError(Exception):
    """Base class of memstrata's own errors."""


class CorruptDataError(MemstrataError):
    """Stored bytes failed validation: bad magic, version, size or checksum.

    Raised instead of ever returning wrong data.
    """


class UnknownCodecError(MemstrataError, ValueError):
    """A codec id or configuration names no registered codec."""


class StoreLockedError(MemstrataError):
    """Another writer (in another process, or in this one) has the path open for writing."""


class ClosedError(MemstrataError, ValueError):
    """A method was called on an object after its ``close()``; the message names the object."""
