"""Trained zstd dictionaries, named by their content digest.

A dictionary is registered once per process (:func:`register_dictionary`); a
frame compressed with it names it by the first 4 bytes of its digest and mixes
the full 16-byte digest into its checksum, so a frame decoded with any other
dictionary fails verification instead of returning wrong bytes. Stores keep the
dictionary bytes themselves (e.g. under their digest) and register them when they
open.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from memstrata.codecs._hash import digest

__all__ = ["get_dictionary", "lookup_dictionary", "register_dictionary", "registered_dictionaries", "train_dictionary"]

_lock = threading.Lock()
_BY_REF: dict[bytes, tuple[bytes, bytes]] = {}  # ref4 -> (digest16, dictionary bytes)


def register_dictionary(dictionary: bytes) -> bytes:
    """Make a zstd dictionary available to encoders and decoders; returns its digest.

    Registering the same bytes again is a no-op. Two different dictionaries whose
    digests share their first 4 bytes (odds about 1 in 4 billion per pair) cannot
    both be registered: the second raises ``ValueError``; train another.

    >>> from memstrata.codecs import register_dictionary
    >>> d = register_dictionary(b"a tiny raw-content dictionary " * 4)
    >>> len(d)
    16
    """
    if not isinstance(dictionary, (bytes, bytearray, memoryview)):
        raise TypeError(f"dictionary: expected bytes, got {type(dictionary).__name__}")
    raw = bytes(dictionary)
    if len(raw) < 8:
        raise ValueError(f"dictionary: expected at least 8 bytes, got {len(raw)}")
    d = digest(raw)
    with _lock:
        existing = _BY_REF.get(d[:4])
        if existing is not None and existing[0] != d:
            raise ValueError(f"dictionary: its reference {d[:4].hex()} clashes with a registered dictionary")
        _BY_REF[d[:4]] = (d, raw)
    return d


def lookup_dictionary(ref: bytes) -> tuple[bytes, bytes] | None:
    """``(digest, dictionary bytes)`` for a 4-byte frame reference, or ``None``."""
    return _BY_REF.get(ref)


def get_dictionary(dictionary_digest: bytes) -> bytes:
    """The bytes of a registered dictionary, by its 16-byte digest (``KeyError`` if absent)."""
    found = _BY_REF.get(bytes(dictionary_digest[:4]))
    if found is None or found[0] != dictionary_digest:
        raise KeyError(f"no zstd dictionary with digest {bytes(dictionary_digest).hex()} is registered")
    return found[1]


def registered_dictionaries() -> dict[bytes, bytes]:
    """Every registered dictionary, ``{digest: bytes}``."""
    with _lock:
        return {d: raw for d, raw in _BY_REF.values()}


def train_dictionary(samples: Iterable[Any], size: int = 64 * 1024, *, level: int = 3) -> bytes:
    """Train a zstd dictionary on sample records and register it.

    Parameters
    ----------
    samples : iterable of bytes-like
        Typical small records (hundreds to thousands; more is better).
    size : int
        Dictionary size in bytes (at most; 16-110 KiB is usual).
    level : int
        zstd level the dictionary is tuned for.

    Returns
    -------
    bytes
        The dictionary's 16-byte digest; pass it as ``ZstdCodec(dictionary=...)``.

    Raises
    ------
    ValueError
        Too few or too uniform samples to train on.
    """
    import zstandard

    items: list[Any] = [bytes(s) for s in samples]
    if size < 256:
        raise ValueError(f"size: expected at least 256 bytes, got {size}")
    if len(items) < 8:
        raise ValueError(f"samples: expected at least 8 samples to train a dictionary, got {len(items)}")
    try:
        trained = zstandard.train_dictionary(size, items, level=level)
    except zstandard.ZstdError as exc:
        raise ValueError(f"samples: zstd could not train a dictionary from {len(items)} samples ({exc})") from None
    return register_dictionary(trained.as_bytes())
