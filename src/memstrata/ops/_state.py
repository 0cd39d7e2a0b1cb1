"""The ``ops/`` directory inside a store: plans, undo points, alerts and metric history, written atomically."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

C = TypeVar("C")
S = TypeVar("S", bound="SectionConfig")

__all__ = ["SectionConfig", "atomic_write", "config_from_dict", "ops_dir", "read_json", "write_json"]


def ops_dir(store: str | os.PathLike[str], *parts: str) -> Path:
    """``STORE/ops/<parts>``, created if missing."""
    d = Path(store, "ops", *parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves the old file or the new one, never a torn one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True, default=str).encode())


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return default
    except ValueError as exc:
        from memstrata.errors import CorruptDataError

        raise CorruptDataError(f"{path}: not valid JSON ({exc})") from exc


def config_from_dict(cls: type[C], d: dict[str, Any], what: str) -> C:
    """``cls(**d)`` for a config dataclass; unknown keys raise ``ValueError`` listing the known ones."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{what} config: unknown keys {unknown}; known: {sorted(known)}")
    return cls(**d)


class SectionConfig:
    """Base of the ops settings dataclasses (alerts, pruning, tuning): one section of settings each.

    A subclass names its section in ``section``; :meth:`from_dict` builds it
    from a dict of that section, rejecting keys that are not its fields.
    """

    section: ClassVar[str]

    @classmethod
    def from_dict(cls: type[S], d: dict[str, Any]) -> S:
        """The settings in ``d`` (defaults for the rest); an unknown key raises ``ValueError`` listing the known ones."""
        return config_from_dict(cls, d, cls.section)
