"""Configuration, argument checks and the serialization of trace data and JSON columns."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from memstrata.codecs import is_plain
from memstrata.errors import CorruptDataError
from memstrata.traces._blob import ENC_JSON, ENC_MSGPACK
from memstrata.traces._types import DEFAULT_PRIORITIES, TraceType, _check_number

__all__ = ["DEFAULT_CONFIG", "DEFAULT_KEEP_TYPES", "PRIORITY_WORDS"]

#: Trace types that age-based retention never removes (unless the config says otherwise).
DEFAULT_KEEP_TYPES = ("fitness_evo", "benchmark", "breakthrough")

#: ``metadata["priority"]`` words and the retention priority each one means
#: (an explicit ``priority`` argument wins). "critical" is above ``high_priority``:
#: committed before the call returns and kept by retention.
PRIORITY_WORDS: dict[str, float] = {"low": 0.2, "medium": 0.5, "high": 0.8, "critical": 1.0}

DEFAULT_CONFIG: dict[str, Any] = {
    "max_memory_traces": 10_000,
    "compression_threshold": 32,
    "retention_days": 30,
    "db_path": ":memory:",
    "durability": "normal",
    "flush_every": 1000,
    "flush_seconds": 1.0,
    "high_priority": 0.8,
    "zstd_level": 1,
    "dictionary_bytes": 16 * 1024,
    "train_after": 1000,
    "type_train_after": 500,
    "lower_is_better": (),
    "higher_is_better": (),
    "keep_types": DEFAULT_KEEP_TYPES,
}
SYNCHRONOUS = {"none": "OFF", "normal": "NORMAL", "full": "FULL"}
STREAM = "*"  # scope of the dictionary shared by every trace type
DAY_SECONDS = 86_400.0

json_encode = msgspec.json.Encoder().encode
json_decode = msgspec.json.Decoder().decode


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic objects.

    Rows, blobs, traces and deltas built in bulk hold no reference cycles, yet
    their allocations trigger collections that traverse every object of the
    process (in an agent with large live state, most of the time spent). Pausing
    defers that to a single collection afterwards.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def check_int(name: str, value: Any, lo: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{name}: expected an int >= {lo}, got {type(value).__name__}")
    if value < lo:
        raise ValueError(f"{name}: expected an int >= {lo}, got {value}")
    return value


def check_config(config: dict[str, Any] | None) -> dict[str, Any]:
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict or None, got {type(config).__name__}")
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"config: unknown keys {unknown}; known keys: {sorted(DEFAULT_CONFIG)}")
    cfg = {**DEFAULT_CONFIG, **config}
    for key in ("max_memory_traces", "flush_every", "train_after", "type_train_after"):
        check_int(key, cfg[key], 1)
    check_int("compression_threshold", cfg["compression_threshold"], 0)
    check_int("dictionary_bytes", cfg["dictionary_bytes"], 256)
    if type(cfg["zstd_level"]) is not int or not -7 <= cfg["zstd_level"] <= 22:
        raise ValueError(f"zstd_level: expected an int in [-7, 22], got {cfg['zstd_level']!r}")
    for key in ("retention_days", "flush_seconds"):
        value = _check_number(key, cfg[key])
        if value < 0:
            raise ValueError(f"{key}: expected a number >= 0, got {value}")
        cfg[key] = value
    hp = _check_number("high_priority", cfg["high_priority"])
    if not 0.0 <= hp <= 1.0:
        raise ValueError(f"high_priority: expected a number in [0, 1], got {hp}")
    cfg["high_priority"] = hp
    if cfg["durability"] not in SYNCHRONOUS:
        raise ValueError(f"durability: expected one of {sorted(SYNCHRONOUS)}, got {cfg['durability']!r}")
    if not isinstance(cfg["db_path"], (str, os.PathLike)):
        raise TypeError(f"db_path: expected a str or path, got {type(cfg['db_path']).__name__}")
    for key in ("lower_is_better", "higher_is_better"):
        names = cfg[key]
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"{key}: expected a list of metric names, got {names!r}")
        cfg[key] = frozenset(names)
    keep = cfg["keep_types"]
    if isinstance(keep, str) or not hasattr(keep, "__iter__"):
        raise TypeError(f"keep_types: expected a list of trace types, got {keep!r}")
    cfg["keep_types"] = tuple(sorted({trace_type(t).value for t in keep}))
    return cfg


TRACE_TYPES: dict[Any, TraceType] = {t.value: t for t in TraceType}
TYPE_INFO: dict[str, tuple[TraceType, str, float]] = {t.value: (t, t.value, DEFAULT_PRIORITIES[t]) for t in TraceType}


def trace_type(value: Any) -> TraceType:
    if type(value) is TraceType:
        return value
    found = TRACE_TYPES.get(str(value)) if isinstance(value, str) else None
    if found is not None:
        return found
    try:
        return TraceType(value)
    except ValueError:
        known = ", ".join(t.value for t in TraceType)
        raise ValueError(f"trace_type: expected a TraceType or one of {known}; got {value!r}") from None


def encode_json_object(name: str, value: Any) -> str:
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise TypeError(f"{name}: expected a dict or None, got {type(value).__name__}")
    if not value:
        return "{}"
    try:
        raw = json_encode(value)
        exact = json_decode(raw) == value
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError, msgspec.DecodeError) as exc:
        raise TypeError(f"{name}: expected a JSON-safe dict ({exc})") from None
    if not exact:  # sets, tuples, bytes, non-str keys, NaN ... would come back changed
        raise TypeError(
            f"{name}: expected a JSON-safe dict (str keys; str, int, float, bool, None, list and dict values), "
            "got one JSON would change"
        )
    return raw.decode()


def decode_json_object(text: Any) -> dict[str, Any]:
    if text == "{}":
        return {}
    try:
        value = json_decode(text)
    except (msgspec.DecodeError, TypeError) as exc:
        raise CorruptDataError(f"traces: unreadable JSON column ({exc})") from None
    if not isinstance(value, dict):
        raise CorruptDataError("traces: a JSON column holds no object")
    return value


def _json_is_exact(data: Any, raw: bytes) -> bool:
    """Whether decoding the JSON text ``raw`` gives back ``data`` with the same types.

    Fast path (no parsing): :func:`memstrata.codecs.is_plain` rejects tuples,
    sets, subclasses, arrays and big ints; ``to_builtins(str_keys=True)``
    changes bytes values and non-str keys, so it equals ``data`` only when there
    are none; NaN and infinities are written as ``null``, so text with ``null``
    in it takes the slow path: decode and compare.
    """
    if not is_plain(data):
        return False
    if b"null" not in raw:
        return bool(msgspec.to_builtins(data, str_keys=True) == data)
    return bool(json_decode(raw) == data)


def serialize(data: Any) -> tuple[int, bytes]:
    """JSON when it carries ``data`` exactly (it compresses best), else msgpack."""
    try:
        raw = json_encode(data)
        if _json_is_exact(data, raw):
            return ENC_JSON, raw
    except Exception:  # anything JSON cannot carry goes to msgpack
        pass
    from memstrata.codecs import serialize as to_msgpack

    try:
        return ENC_MSGPACK, to_msgpack(data)
    except TypeError as exc:
        raise TypeError(f"data: {exc}") from None
