"""Whether JSON carries a value exactly: the test that lets records be stored as JSON text."""

from __future__ import annotations

from typing import Any

import msgspec

from memstrata._native.frames import prepare

__all__ = ["is_plain_json"]

_json_decode = msgspec.json.Decoder().decode


class _NotPlain(Exception):
    pass


def _flag(value: Any) -> Any:
    raise _NotPlain


def is_plain_json(data: Any, raw: bytes) -> bool:
    """Whether decoding the JSON text ``raw`` (the encoding of ``data``) gives back
    ``data`` with the same types.

    JSON compresses best for structured records, but it cannot carry tuples,
    sets, bytes, non-str keys, big ints, NaN or infinities: a caller that
    stores ``raw`` in place of ``data`` checks here first and falls back to
    :func:`memstrata.codecs.serialize` (msgpack) when this is false.

    Fast path (no parsing): the compiled walker of :func:`serialize` rejects
    tuples, sets, subclasses, arrays and big ints; ``to_builtins(str_keys=True)``
    changes bytes values and non-str keys, so it equals ``data`` only when
    there are none; NaN and infinities are written as ``null``, so text with
    ``null`` in it takes the slow path: decode and compare.

    Examples
    --------
    >>> import msgspec
    >>> record = {"op": "add", "delta": 0.25, "tags": ["a", "b"]}
    >>> is_plain_json(record, msgspec.json.encode(record))
    True
    >>> is_plain_json({"pair": (1, 2)}, msgspec.json.encode({"pair": (1, 2)}))   # comes back a list
    False
    >>> is_plain_json({"x": float("nan")}, msgspec.json.encode({"x": float("nan")}))  # written as null
    False
    """
    try:
        prepare(data, _flag)
    except _NotPlain:
        return False
    if b"null" not in raw:
        return bool(msgspec.to_builtins(data, str_keys=True) == data)
    try:
        return bool(_json_decode(raw) == data)
    except msgspec.DecodeError:
        return False
