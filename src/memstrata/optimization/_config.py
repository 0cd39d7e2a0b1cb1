"""``OptimizationConfig``: the optimization layer's documented configuration, mapped onto ``StoreConfig``.

The documented YAML files (a quick start with top-level switches, and a full
example with ``compression``, ``tiered_storage``, ``deduplication`` and
``adaptive`` sections) load as written; an unknown key raises ``ValueError``
naming it and the keys that are known.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from memstrata.store import StoreConfig, read_config_file
from memstrata.types import Durability

__all__ = [
    "LEVEL_PRESETS",
    "AdaptiveConfig",
    "CompressionConfig",
    "DeduplicationConfig",
    "OptimizationConfig",
    "TieredStorageConfig",
    "get_optimization_level_preset",
]

_MB = 1 << 20


@dataclass
class CompressionConfig:
    """The ``compression`` section."""

    enabled: bool = True
    default_strategy: str = "adaptive"
    compression_level: int = 6
    quantization_bits: int = 8
    episodic_compression_target: float = 0.70
    semantic_compression_target: float = 0.80
    allow_lossy: bool = False


# alike in shape only to agent/config.py's AgentConfig: dataclass fields with defaults, none shared
@dataclass
class TieredStorageConfig:
    """The ``tiered_storage`` section."""

    enabled: bool = True
    hot_capacity_mb: float = 200.0
    warm_capacity_mb: float = 1024.0
    eviction_policy: str = "lru"
    hot_to_warm_idle_hours: float = 1.0
    warm_to_cold_idle_hours: float = 24.0
    migration_interval_minutes: float = 5.0
    promote_cold_hits: int = 2
    promote_warm_hits: int = 5


@dataclass
class DeduplicationConfig:
    """The ``deduplication`` section."""

    enabled: bool = True
    enable_bloom_filter: bool = True
    bloom_filter_size: int = 1_000_000
    bloom_filter_fp_rate: float = 0.01


@dataclass
class AdaptiveConfig:
    """The ``adaptive`` section (the opt-in tuning loop's targets)."""

    enabled: bool = False
    telemetry_interval_seconds: float = 10.0
    tuning_interval_seconds: float = 300.0
    learning_rate: float = 0.1
    memory_reduction_target: float = 0.75
    max_performance_impact: float = 0.05
    pruning_days: int = 30


_SECTIONS: dict[str, type] = {
    "compression": CompressionConfig,
    "tiered_storage": TieredStorageConfig,
    "deduplication": DeduplicationConfig,
    "adaptive": AdaptiveConfig,
}

# The documented optimization levels (compression level, hot capacity, migration
# interval, pruning age). ``StoreConfig``'s own presets differ where measurement
# favoured other values for an embedded store; README lists both tables.
LEVEL_PRESETS: dict[str, dict[str, float]] = {
    "conservative": {"compression_level": 3, "hot_capacity_mb": 500, "migration_interval_minutes": 10, "pruning_days": 90},
    "moderate": {"compression_level": 6, "hot_capacity_mb": 200, "migration_interval_minutes": 5, "pruning_days": 30},
    "aggressive": {"compression_level": 9, "hot_capacity_mb": 100, "migration_interval_minutes": 1, "pruning_days": 7},
}


@dataclass
class OptimizationConfig:
    """Settings of :class:`memstrata.optimization.OptimizationMiddleware`.

    ``enabled`` is ``False`` by default: the middleware then passes every call
    to the wrapped engine untouched. ``storage_path`` (not in the original
    document) names the directory of the store; ``None`` keeps it in RAM.

    Examples
    --------
    >>> config = OptimizationConfig()
    >>> config.enabled, config.compression.compression_level
    (False, 6)
    >>> OptimizationConfig.from_dict({"compression": {"level": 3}})
    Traceback (most recent call last):
    ...
    ValueError: config: unknown key 'compression.level'; known keys of 'compression': allow_lossy, compression_level, default_strategy, enabled, episodic_compression_target, quantization_bits, semantic_compression_target
    """

    enabled: bool = False
    optimization_level: str = "moderate"
    enable_compression: bool = True
    enable_tiered_storage: bool = True
    enable_deduplication: bool = True
    storage_path: str | None = None
    durability: Durability = "normal"
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    tiered_storage: TieredStorageConfig = field(default_factory=TieredStorageConfig)
    deduplication: DeduplicationConfig = field(default_factory=DeduplicationConfig)
    adaptive: AdaptiveConfig = field(default_factory=AdaptiveConfig)

    # ----------------------------------------------------------- loading --

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizationConfig:
        """Build from a (possibly nested) dict; ``optimization_level`` picks the base preset."""
        if not isinstance(data, dict):
            raise TypeError(f"config: expected a dict, got {type(data).__name__}")
        top = {f.name for f in fields(cls)} - set(_SECTIONS)
        for key in data:
            if key not in top and key not in _SECTIONS:
                raise ValueError(f"config: unknown key {key!r}; known keys: {', '.join(sorted(top | set(_SECTIONS)))}")
        if "optimization_level" in data:  # the level's values, but still opt-in unless ``enabled`` says so
            if data["optimization_level"] not in LEVEL_PRESETS:
                raise ValueError(
                    f"optimization_level: expected one of {sorted(LEVEL_PRESETS)}, got {data['optimization_level']!r}"
                )
            config = replace(get_optimization_level_preset(data["optimization_level"]), enabled=False)
        else:
            config = cls()
        for key, value in data.items():
            if key in _SECTIONS:
                if not isinstance(value, dict):
                    raise TypeError(f"config: {key!r} must be a mapping, got {type(value).__name__}")
                section = getattr(config, key)
                known = {f.name for f in fields(section)}
                for sub in value:
                    if sub not in known:
                        raise ValueError(
                            f"config: unknown key '{key}.{sub}'; known keys of {key!r}: {', '.join(sorted(known))}"
                        )
                setattr(config, key, replace(section, **value))
            else:
                setattr(config, key, value)
        config.validate()
        return config

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OptimizationConfig:
        """Read a YAML (``.yaml``/``.yml``, needs PyYAML) or TOML file as documented."""
        return cls.from_dict(read_config_file(path, "config_path"))

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict that round-trips through :meth:`from_dict`."""
        return asdict(self)

    def validate(self) -> None:
        """Check every value; raises ``ValueError`` naming the key."""
        if self.optimization_level not in LEVEL_PRESETS:
            raise ValueError(
                f"optimization_level: expected one of {sorted(LEVEL_PRESETS)}, got {self.optimization_level!r}"
            )
        if not 1 <= int(self.compression.compression_level) <= 22:
            raise ValueError(f"compression.compression_level: expected 1..22, got {self.compression.compression_level!r}")
        if self.compression.quantization_bits not in (1, 4, 8):
            raise ValueError(f"compression.quantization_bits: expected 1, 4 or 8, got {self.compression.quantization_bits!r}")
        from memstrata.optimization._strategies import CompressionStrategy

        try:
            CompressionStrategy(self.compression.default_strategy)
        except ValueError:
            known = ", ".join(s.value for s in CompressionStrategy)
            raise ValueError(
                f"compression.default_strategy: expected one of {known}, got {self.compression.default_strategy!r}"
            ) from None
        for name in ("hot_capacity_mb", "warm_capacity_mb", "hot_to_warm_idle_hours", "warm_to_cold_idle_hours"):
            v = getattr(self.tiered_storage, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"tiered_storage.{name}: expected a non-negative number, got {v!r}")
        if not 0.0 <= float(self.adaptive.learning_rate) <= 1.0:
            raise ValueError(f"adaptive.learning_rate: expected a number in [0, 1], got {self.adaptive.learning_rate!r}")
        self.to_store_config()  # durability and eviction policy are checked by StoreConfig

    # ------------------------------------------------------------ mapping --

    def to_store_config(self) -> StoreConfig:
        """The :class:`~memstrata.store.StoreConfig` this configuration means.

        Compression level -> ``zstd_level`` (1 when compression is switched off); hot capacity -> ``hot_max_bytes``
        (0 when tiered storage is off: everything is kept on the durable tier);
        warm capacity -> ``warm_max_bytes``; idle hours -> idle seconds;
        migration interval -> ``migration_interval_seconds``; eviction policy as
        named.
        """
        ts = self.tiered_storage
        tiered = self.enable_tiered_storage and ts.enabled
        return StoreConfig(
            durability=self.durability,
            # compression off: the fastest level (frames still carry their checksums), never a lossy codec
            zstd_level=int(self.compression.compression_level) if self.enable_compression and self.compression.enabled else 1,
            hot_max_bytes=int(ts.hot_capacity_mb * _MB) if tiered else 0,
            warm_max_bytes=int(ts.warm_capacity_mb * _MB) if tiered and ts.warm_capacity_mb else None,
            eviction_policy=ts.eviction_policy,
            hot_idle_seconds=ts.hot_to_warm_idle_hours * 3600.0 if tiered else None,
            warm_idle_seconds=ts.warm_to_cold_idle_hours * 3600.0 if tiered else None,
            migration_interval_seconds=ts.migration_interval_minutes * 60.0 if tiered else None,
            promote_cold_hits=ts.promote_cold_hits,
            promote_warm_hits=ts.promote_warm_hits,
            target_reduction_percent=100.0 * self.adaptive.memory_reduction_target,
        )


def get_optimization_level_preset(level: str) -> OptimizationConfig:
    """The documented preset ``conservative``, ``moderate`` or ``aggressive`` (enabled).

    >>> c = get_optimization_level_preset("aggressive")
    >>> c.enabled, c.compression.compression_level, c.tiered_storage.hot_capacity_mb
    (True, 9, 100)
    """
    level = str(getattr(level, "value", level))
    if level not in LEVEL_PRESETS:
        raise ValueError(f"level: expected one of {sorted(LEVEL_PRESETS)}, got {level!r}")
    p = LEVEL_PRESETS[level]
    return OptimizationConfig(
        enabled=True,
        optimization_level=level,
        compression=CompressionConfig(compression_level=int(p["compression_level"])),
        tiered_storage=TieredStorageConfig(
            hot_capacity_mb=p["hot_capacity_mb"], migration_interval_minutes=p["migration_interval_minutes"]
        ),
        adaptive=AdaptiveConfig(pruning_days=int(p["pruning_days"])),
    )
