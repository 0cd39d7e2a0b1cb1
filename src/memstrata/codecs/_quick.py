"""The quick decode of the frames a store holds most, in one pass with the checks of the general path.

:func:`quick_decode` takes the commonest small frames — zstd or raw payloads of
serialized values and bytes, and arrays that blosc2 stored uncompressed (an int8
embedding does not compress) — straight from the compiled header parse to the
value, without the general path's header object, codec lookup and wrappers. It
makes every check the general path makes (head, checksum over the stored or the
computed content digest, lengths, a payload that decodes whole); when any of them
fails, or the frame is of another shape, it returns :data:`SLOW` and the caller
takes the general path, which raises the specific error. It never returns a value
the general path would not.
"""

from __future__ import annotations

from functools import partial
from threading import get_ident
from typing import Any

import numpy as np

from memstrata.codecs import _frame
from memstrata.codecs._dictionaries import get_dictionary, lookup_dictionary
from memstrata.codecs._frame import KIND_ARRAY, KIND_BYTES, KIND_VALUE
from memstrata.codecs._hash import digest
from memstrata.codecs._values import deserialize, value_decoder
from memstrata.errors import CorruptDataError

__all__ = ["SLOW", "array_spec", "blosc2_stored", "decode_quick", "quick_compiled", "quick_decode", "zstd_decompressor"]

#: What :func:`quick_decode` returns for a frame it leaves to the general path.
SLOW: Any = object()

RAW, ZSTD, BLOSC2 = 0, 2, 4  # frame ids of the codecs taken here
#: blosc2 chunk: the extended (32-byte) header, whose flags have the two shuffle bits set, and the memcpy bit
BLOSC2_HEADER = 32
BLOSC2_EXTENDED_MEMCPY = 0x07

# decompressors per (thread, dictionary digest): zstandard contexts are not thread-safe
_ZSTD_DCTX: dict[tuple[int, bytes | None], Any] = {}
MAX_CONTEXTS = 256
#: (dtype, shape) per meta block of the array frames met; bounded (cleared when full)
_SPECS: dict[bytes, tuple[np.dtype[Any], tuple[int, ...]]] = {}
SPECS_MAX = 256

_parse = _frame._native.parse if _frame._native is not None else None
_checksum_matches = _frame.checksum_matches


def zstd_decompressor(dictionary_digest: bytes | None, dictionary: bytes | None = None) -> Any:
    """This thread's zstd decompressor (magicless format) for the dictionary of ``dictionary_digest``, made once.

    ``dictionary``: its bytes when the caller has them, else they are looked up
    among the registered dictionaries. Shared by the frame and compact-frame decoders.
    """
    key = (get_ident(), dictionary_digest)
    d = _ZSTD_DCTX.get(key)
    if d is not None:
        return d
    import zstandard

    magicless = zstandard.FORMAT_ZSTD1_MAGICLESS
    if dictionary_digest is None:
        d = zstandard.ZstdDecompressor(format=magicless)
    else:
        raw = get_dictionary(dictionary_digest) if dictionary is None else dictionary
        d = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(raw), format=magicless)
    if len(_ZSTD_DCTX) >= MAX_CONTEXTS:  # threads come and go: the cache stays bounded
        _ZSTD_DCTX.clear()
    _ZSTD_DCTX[key] = d
    return d


def array_spec(meta: dict[str, Any]) -> tuple[np.dtype[Any], tuple[int, ...]]:
    """``(dtype, shape)`` of an array frame's meta; ``CorruptDataError`` when it names none or an object dtype."""
    try:
        dtype = np.dtype(meta["dtype"])
        shape = tuple(int(s) for s in meta["shape"])
    except Exception as exc:
        raise CorruptDataError(f"frame: bad array meta ({exc})") from None
    if dtype.hasobject:
        raise CorruptDataError("frame: object dtype in array meta")
    return dtype, shape


def blosc2_stored(chunk: Any, n: int) -> Any:
    """The ``n`` bytes a blosc2 chunk holds uncompressed (blosc2 copied them in whole), or None.

    None for any other chunk (compressed, filtered, special values, another
    length): those are blosc2's to decode. ``chunk`` is a memoryview.
    """
    if n <= 0 or len(chunk) != n + BLOSC2_HEADER or chunk[2] & BLOSC2_EXTENDED_MEMCPY != BLOSC2_EXTENDED_MEMCPY:
        return None
    head = chunk[:BLOSC2_HEADER]
    if int.from_bytes(head[4:8], "little") != n or int.from_bytes(head[12:16], "little") != len(chunk):
        return None
    if any(head[16:22]) or head[31]:  # filters, or special values / a lazy chunk
        return None
    return chunk[BLOSC2_HEADER:]


def quick_decode(frame: bytes) -> Any:
    """The value of ``frame``, or :data:`SLOW` (see the module docstring); ``frame`` is ``bytes``."""
    if _parse is None:
        return SLOW
    try:
        (_v, codec, kind, n, _c, _r, meta_start, meta_length, offset, length, dictionary, dd, implicit) = _parse(
            frame, lookup_dictionary, True
        )
    except CorruptDataError:
        return SLOW
    if kind == KIND_VALUE or kind == KIND_BYTES:
        if meta_length:
            return SLOW
        if codec == RAW:
            out = frame[offset : offset + length]
        elif codec != ZSTD or not n:
            return SLOW
        else:
            try:
                out = zstd_decompressor(dd, dictionary).decompress(memoryview(frame)[offset : offset + length], max_output_size=n)
            except Exception:  # the general path names the failure
                return SLOW
        if len(out) != n:
            return SLOW
        if implicit and not _checksum_matches(frame, digest(out) if dd is None else dd + digest(out)):
            return SLOW
        if kind == KIND_BYTES:
            return out
        try:
            return deserialize(out)
        except CorruptDataError:
            return SLOW
    if kind != KIND_ARRAY or codec != BLOSC2 or implicit or not meta_length:
        return SLOW
    mv = memoryview(frame)
    stored = blosc2_stored(mv[offset : offset + length], n)
    if stored is None:
        return SLOW
    meta = frame[meta_start : meta_start + meta_length]
    spec = _SPECS.get(meta)
    if spec is None:
        try:
            fields = _frame._decode_meta(meta)
            spec = array_spec(fields)
        except CorruptDataError:
            return SLOW
        if len(fields) != 2 or spec[0].itemsize == 0:  # codec parameters beside dtype and shape: the general path
            return SLOW
        if len(_SPECS) >= SPECS_MAX:
            _SPECS.clear()
        _SPECS[meta] = spec
    try:
        return np.frombuffer(bytearray(stored), dtype=spec[0]).reshape(spec[1])  # writable, never a view of the frame
    except ValueError:
        return SLOW


#: ``quick_compiled(frame)``: the compiled twin of :func:`quick_decode` (its value, or ``SLOW`` also where a
#: decompressor or array spec is still to be made, which :func:`quick_decode` does); None when not built.
quick_compiled: Any = (
    None
    if _frame._native is None
    else partial(_frame._native.quick, lookup_dictionary, _ZSTD_DCTX, value_decoder, _SPECS, np.frombuffer, SLOW)
)

#: ``decode_quick(frame)``: the value of a ``bytes`` frame, or ``SLOW`` (public as ``memstrata.codecs.NOT_QUICK``)
#: for a frame the quick path leaves to :func:`memstrata.codecs.decode`, which makes what it lacked; a hot read
#: path calls it first (the compiled twin when built).
decode_quick: Any = quick_decode if quick_compiled is None else quick_compiled
