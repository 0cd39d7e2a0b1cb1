"""``StoreConfig``: one dataclass for every MemoryStore setting, with presets and file loading."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from memstrata._native.eviction import DEFAULT_POLICY, check_policy
from memstrata.types import Durability

__all__ = ["PRESETS", "StoreConfig", "read_config_file"]


@dataclass(frozen=True)
class StoreConfig:
    """Settings of a :class:`memstrata.MemoryStore`.

    Attributes
    ----------
    durability : {"none", "normal", "full"}
        What an acknowledged write survives (see :class:`memstrata.MemoryStore`).
    hot_max_bytes : int
        RAM bound of the hot tier (values plus a fixed per-entry charge).
    eviction_policy : str
        Hot tier eviction policy, one of ``memstrata._native.eviction.POLICIES``
        (default ``DEFAULT_POLICY``); anything else raises ``ValueError`` naming
        ``eviction_policy`` and listing the policies.
    warm_max_bytes : int or None
        Demote least recently used warm blobs to cold above this many frame bytes.
    hot_idle_seconds, warm_idle_seconds : float or None
        Demote hot -> warm / warm -> cold after this long without access (None: never).
    promote_cold_hits, promote_warm_hits : int
        Reads between migration passes that promote cold -> warm and warm -> hot.
    migration_interval_seconds : float or None
        Period of the background migration thread (None or 0: no thread; call
        :meth:`memstrata.MemoryStore.run_migrations`).
    zstd_level : int
        zstd level of records and bytes.
    train_after : int
        Train a zstd dictionary after this many small records (0: never).
    pack_max_bytes : int
        Seal a cold pack once it holds this many bytes.
    compact_dead_ratio : float
        :meth:`~memstrata.MemoryStore.compact` rewrites sealed packs with at
        least this fraction of dead bytes.
    max_disk_bytes : int or None
        Cap on the SQLite file; writes past it raise ``StorageFullError``.
    target_reduction_percent : float
        Reduction of stored bytes vs raw serialized bytes that statistics
        report as met or not.

    Examples
    --------
    >>> StoreConfig.preset("aggressive").zstd_level
    9
    >>> StoreConfig.from_dict({"hot_max_bytes": 1024}).hot_max_bytes
    1024
    >>> StoreConfig.from_dict({"hot_bytes": 1})
    Traceback (most recent call last):
    ...
    ValueError: config: unknown key 'hot_bytes'; known keys: compact_dead_ratio, durability, eviction_policy, hot_idle_seconds, hot_max_bytes, max_disk_bytes, migration_interval_seconds, pack_max_bytes, preset, promote_cold_hits, promote_warm_hits, target_reduction_percent, train_after, warm_idle_seconds, warm_max_bytes, zstd_level
    """

    durability: Durability = "normal"
    hot_max_bytes: int = 32 << 20
    eviction_policy: str = DEFAULT_POLICY
    warm_max_bytes: int | None = None
    hot_idle_seconds: float | None = 600.0
    warm_idle_seconds: float | None = 7 * 86400.0
    promote_cold_hits: int = 2
    promote_warm_hits: int = 5
    migration_interval_seconds: float | None = 30.0
    zstd_level: int = 3
    train_after: int = 1000
    pack_max_bytes: int = 64 << 20
    compact_dead_ratio: float = 0.3
    max_disk_bytes: int | None = None
    target_reduction_percent: float = 50.0

    def __post_init__(self) -> None:
        if self.durability not in ("none", "normal", "full"):
            raise ValueError(f"durability: expected 'none', 'normal' or 'full', got {self.durability!r}")
        check_policy(self.eviction_policy, "eviction_policy")
        for name in ("hot_max_bytes", "pack_max_bytes", "promote_cold_hits", "promote_warm_hits", "train_after"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {v!r}")
        for name in ("warm_max_bytes", "max_disk_bytes"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
                raise ValueError(f"{name}: expected a positive integer or None, got {v!r}")
        for name in ("hot_idle_seconds", "warm_idle_seconds", "migration_interval_seconds"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"{name}: expected a non-negative number of seconds or None, got {v!r}")
        if not 1 <= int(self.zstd_level) <= 22:
            raise ValueError(f"zstd_level: expected 1..22, got {self.zstd_level!r}")
        if not 0.0 <= float(self.compact_dead_ratio) <= 1.0:
            raise ValueError(f"compact_dead_ratio: expected a fraction in [0, 1], got {self.compact_dead_ratio!r}")

    @classmethod
    def preset(cls, name: str) -> StoreConfig:
        """One of ``conservative``, ``moderate`` (the defaults) or ``aggressive``."""
        try:
            return cls(**PRESETS[name])
        except KeyError:
            raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}") from None

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> StoreConfig:
        """Build from a dict; ``preset`` picks the base; unknown keys raise ``ValueError`` naming them."""
        if not isinstance(config, dict):
            raise TypeError(f"config: expected a dict, got {type(config).__name__}")
        known = {f.name for f in fields(cls)}
        for key in config:
            if key not in known and key != "preset":
                raise ValueError(f"config: unknown key {key!r}; known keys: {', '.join(sorted(known | {'preset'}))}")
        values = dict(config)
        base = cls.preset(values.pop("preset")) if "preset" in values else cls()
        return replace(base, **values)

    @classmethod
    def load(cls, path: str | Path) -> StoreConfig:
        """Read a ``.toml`` or ``.yaml``/``.yml`` file (a ``[memstrata]`` table, or top-level keys).

        YAML needs PyYAML installed.
        """
        data = read_config_file(path, "config")
        if isinstance(data, dict) and isinstance(data.get("memstrata"), dict):
            data = data["memstrata"]
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-safe dict that round-trips through :meth:`from_dict`."""
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # keep more in RAM, compress lightly, move rarely, fsync every commit
    "conservative": {
        "durability": "full",
        "hot_max_bytes": 128 << 20,
        "hot_idle_seconds": 3600.0,
        "warm_idle_seconds": 30 * 86400.0,
        "migration_interval_seconds": 60.0,
        "zstd_level": 1,
    },
    "moderate": {},
    # small RAM, strong compression, demote quickly
    "aggressive": {
        "hot_max_bytes": 4 << 20,
        "hot_idle_seconds": 60.0,
        "warm_idle_seconds": 3600.0,
        "migration_interval_seconds": 10.0,
        "zstd_level": 9,
        "train_after": 500,
    },
}


def read_config_file(path: str | os.PathLike[str], argument: str = "config") -> dict[str, Any]:
    """The mapping in a ``.toml`` or ``.yaml``/``.yml`` file (YAML needs PyYAML: ``memstrata[yaml]``).

    Errors are ``ValueError`` naming ``argument`` and the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{argument}: cannot read {path}: {exc.strerror or exc}") from exc
    if path.suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{argument}: {path} is not valid TOML: {exc}") from exc
    elif path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError as exc:
            raise ValueError(f"{argument}: {path} is YAML; install PyYAML (memstrata[yaml]) to read it, or use TOML") from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{argument}: {path} is not valid YAML: {exc}") from exc
    else:
        raise ValueError(f"{argument}: expected a .toml, .yaml or .yml file, got {path.name!r}")
    if not isinstance(data, dict):
        raise ValueError(f"{argument}: {path} must hold a mapping of settings, got {type(data).__name__}")
    return data


def resolve_config(config: Any) -> StoreConfig:
    """``config`` (a StoreConfig, dict, preset name or TOML/YAML path, or None) as a :class:`StoreConfig`."""
    if config is None:
        return StoreConfig()
    if isinstance(config, StoreConfig):
        return config
    if isinstance(config, dict):
        return StoreConfig.from_dict(config)
    if isinstance(config, str) and not config.endswith((".toml", ".yaml", ".yml")):
        return StoreConfig.preset(config)
    if isinstance(config, (str, os.PathLike)):
        return StoreConfig.load(Path(config))
    raise TypeError(f"config: expected a StoreConfig, dict, preset name or file path, got {type(config).__name__}")
