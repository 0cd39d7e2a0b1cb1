"""Safe serialization of plain values and numpy arrays (msgpack, never pickle).

Supported: ``dict``, ``list``, ``tuple``, ``str``, ``bytes``, ``int`` (any size),
``float`` (including NaN and ±inf), ``bool``, ``None``, nested freely, numpy
arrays of any non-object, non-structured dtype (dtype, byte order and shape
preserved; non-contiguous arrays are stored C-ordered) and numpy scalars. Dict
keys may be ``str``, ``int``, ``bytes``, ``float``, ``bool`` or ``None``.
``bytearray`` and ``memoryview`` come back as ``bytes``. Every other type —
including subclasses of the types above, sets and dataclasses — raises
``TypeError`` naming the type, so nothing changes type silently.

Encoding is msgpack (msgspec) with four extension types, written down in
``docs/format.md``: 1 ndarray, 2 tuple, 3 numpy scalar, 4 big integer.
Decoding never executes code.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from memstrata.errors import CorruptDataError

__all__ = ["deserialize", "is_plain", "serialize"]

EXT_NDARRAY = 1
EXT_TUPLE = 2
EXT_NPSCALAR = 3
EXT_BIGINT = 4

_Ext = msgspec.msgpack.Ext
_encoder = msgspec.msgpack.Encoder()
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_KEY_TYPES = (str, int, bytes, float, bool, type(None))


def _array_dtype(arr: np.ndarray, what: str) -> str:
    dt = arr.dtype
    if dt.hasobject or dt.names is not None or dt.subdtype is not None:
        raise TypeError(f"{what}: numpy arrays of dtype {dt} are not serializable (object or structured dtype)")
    return dt.str


def _ext_array(arr: np.ndarray, code: int) -> Any:
    meta = _encoder.encode([_array_dtype(arr, "value"), list(arr.shape)])
    return _Ext(code, len(meta).to_bytes(2, "little") + meta + np.ascontiguousarray(arr).tobytes())


def _bigint(v: int) -> Any:
    return _Ext(EXT_BIGINT, v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True))


def _checked_items(d: dict[Any, Any]) -> Any:
    """``d.items()``, raising at the first key msgpack cannot carry (in order, as the compiled twin)."""
    for k, x in d.items():
        if type(k) not in _KEY_TYPES:
            raise TypeError(f"value: dict keys of type {type(k).__name__} are not serializable "
                            "(use str, int, bytes, float, bool or None)")
        if type(k) is int and not _INT_MIN <= k <= _INT_MAX:
            raise TypeError("value: dict keys must be ints within 64 bits")
        yield k, x


def _prepare_items(container: Any, items: Any) -> Any:
    """Prepare each ``(key or index, item)`` of a dict or list, copying it at the first change."""
    out = None
    for k, x in items:
        y = _prepare(x)
        if y is not x and out is None:
            out = container.copy()
        if out is not None:
            out[k] = y
    return container if out is None else out


def _prepare(v: Any) -> Any:
    """Return ``v`` with every non-msgpack-native part replaced by an ``Ext``.

    Copies a container only when something inside it changes, so the common case
    (already plain data) allocates nothing.
    """
    t = type(v)
    if t is str or t is float or t is bool or v is None or t is bytes:
        return v
    if t is int:
        return v if _INT_MIN <= v <= _INT_MAX else _bigint(v)
    if t is dict:
        return _prepare_items(v, _checked_items(v))
    if t is list:
        return _prepare_items(v, enumerate(v))
    if t is tuple:
        return _Ext(EXT_TUPLE, _encoder.encode(_prepare(list(v))))
    if t is np.ndarray:
        return _ext_array(v, EXT_NDARRAY)
    if t is bytearray or t is memoryview:
        return bytes(v)
    if isinstance(v, np.generic) and t is not np.object_:
        return _ext_array(np.asarray(v), EXT_NPSCALAR)
    raise TypeError(f"value: objects of type {t.__module__}.{t.__qualname__} are not serializable; "
                    "use dict, list, tuple, str, bytes, int, float, bool, None or numpy arrays")


def _prepare_other(v: Any) -> Any:
    """What the compiled walker hands back: everything that is not plain msgpack data."""
    t = type(v)
    if t is tuple:
        return _Ext(EXT_TUPLE, _encoder.encode(_native_prepare(list(v), _prepare_other)))
    if t is int:
        return _bigint(v)
    return _prepare(v)


try:  # the compiled twin of _prepare (same behaviour, several times faster)
    from memstrata._native.frames import prepare as _native_prepare
except ImportError:  # pragma: no cover - source checkout without compiled extensions
    _native_prepare = None  # type: ignore[assignment]  # the pure-Python path below serves then


class _NotPlain(Exception):
    pass


def _reject(value: Any) -> Any:
    raise _NotPlain


def is_plain(value: Any) -> bool:
    """Whether ``value`` is made only of msgpack's own types, with nothing to convert.

    True for nested ``dict``, ``list``, ``str``, ``bytes``, ``int`` (within 64
    bits), ``float``, ``bool`` and ``None`` (exact types, not subclasses); False
    when any part is a tuple, numpy array or scalar, big int, subclass or an
    unsupported type. A text format that has no tuples (JSON) carries a plain
    value exactly when it also has no bytes, no non-str keys and no NaN/inf.

    >>> is_plain({"a": [1, 2.5, None]}), is_plain({"a": (1, 2)}), is_plain({1})
    (True, False, False)
    """
    if _native_prepare is not None:
        try:
            _native_prepare(value, _reject)
        except (_NotPlain, TypeError):
            return False
        return True
    try:
        return _prepare(value) is value
    except TypeError:
        return False


def serialize(value: Any) -> bytes:
    """Encode a value as msgpack bytes, safely (no pickle).

    Parameters
    ----------
    value : dict, list, tuple, str, bytes, int, float, bool, None or ndarray
        Nested freely; see the module docstring for the exact rules.

    Returns
    -------
    bytes
        Decodable with :func:`deserialize`.

    Raises
    ------
    TypeError
        A part of ``value`` has an unsupported type; the message names it.
    ValueError
        ``value`` is nested deeper than the interpreter's recursion limit allows.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata import serialize, deserialize
    >>> v = {"id": 7, "tags": ("a", "b"), "vec": np.arange(3, dtype=np.float32)}
    >>> out = deserialize(serialize(v))
    >>> out["tags"], out["vec"].dtype, out["vec"].tolist()
    (('a', 'b'), dtype('float32'), [0.0, 1.0, 2.0])
    >>> serialize({1, 2})
    Traceback (most recent call last):
    ...
    TypeError: value: objects of type builtins.set are not serializable; use dict, list, tuple, str, bytes, int, float, bool, None or numpy arrays
    """
    try:
        prepared = _native_prepare(value, _prepare_other) if _native_prepare is not None else _prepare(value)
        return _encoder.encode(prepared)
    except RecursionError:
        import sys

        raise ValueError(
            f"value: nested too deeply (the limit is about {sys.getrecursionlimit()} levels of lists, tuples "
            "and dicts); store the inner parts under keys of their own"
        ) from None


def _array_from_ext(data: memoryview) -> np.ndarray:
    n = int.from_bytes(data[:2], "little")
    dtype_str, shape = _decoder.decode(data[2 : 2 + n])
    dtype = np.dtype(dtype_str)
    if dtype.hasobject:
        raise CorruptDataError("value: object dtype in serialized data")
    arr = np.frombuffer(data[2 + n :], dtype=dtype).reshape(shape) if dtype.itemsize else np.empty(shape, dtype)
    return arr.copy()  # own, writable memory


def _ext_hook(code: int, data: memoryview) -> Any:
    if code == EXT_TUPLE:
        return tuple(_decoder.decode(data))
    if code == EXT_NDARRAY:
        return _array_from_ext(data)
    if code == EXT_NPSCALAR:
        return _array_from_ext(data)[()]
    if code == EXT_BIGINT:
        return int.from_bytes(data, "little", signed=True)
    raise CorruptDataError(f"value: unknown msgpack extension type {code}")


_decoder = msgspec.msgpack.Decoder(ext_hook=_ext_hook)
#: The decoder :func:`deserialize` uses (``value_decoder.decode(data)``, without its error translation).
value_decoder = _decoder


def deserialize(data: Any) -> Any:
    """Decode bytes written by :func:`serialize`.

    Parameters
    ----------
    data : bytes-like

    Returns
    -------
    The value, with tuples, numpy arrays (dtype and shape) and big ints restored.

    Raises
    ------
    CorruptDataError
        ``data`` is not a valid serialized value.

    Examples
    --------
    >>> from memstrata import serialize, deserialize
    >>> deserialize(serialize([1, (2.5, None), b"x", 2**70]))
    [1, (2.5, None), b'x', 1180591620717411303424]
    """
    try:
        return _decoder.decode(data)
    except CorruptDataError:
        raise
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        raise CorruptDataError(f"value: not a serialized memstrata value ({exc})") from None
