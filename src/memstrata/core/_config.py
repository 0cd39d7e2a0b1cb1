"""MemoryCore configuration: defaults < a config file < ``MEMSTRATA_*`` environment variables < arguments."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["CoreConfig"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass
class CoreConfig:
    """Which layers :class:`MemoryCore` uses and how.

    Every field can be set by an environment variable ``MEMSTRATA_<FIELD>``
    (upper case; e.g. ``MEMSTRATA_CACHE_ENABLED=false``,
    ``MEMSTRATA_REDIS_URL=redis://host:6379/0``) or by a TOML/JSON file with
    the same names (``config_file=`` or ``MEMSTRATA_CONFIG``).
    """

    cache_enabled: bool = True
    durable_enabled: bool = True
    vector_enabled: bool = True
    #: best-effort fan-out (vector index, trust ledger, events); cache and durable are separate switches
    fanout_enabled: bool = True
    events_enabled: bool = True
    trust_enabled: bool = True
    #: Redis for the cache layer (shared hot tier) instead of RAM
    redis_url: str | None = None
    #: PostgreSQL for the durable store, patterns table and audit log instead of the embedded ones
    database_url: str | None = None
    redis_namespace: str = "memstrata:"
    table_prefix: str = "memstrata_"
    #: name of this writer's replay positions (distinct per process sharing one database)
    instance: str = "default"
    cache_max_bytes: int = 64 << 20
    default_ttl_seconds: float | None = 3600.0
    durability: str = "normal"
    audit_reads: bool = False
    semantic_fallback: bool = False
    semantic_min_score: float = 0.8
    vector_dim: int = 256
    events_queue_size: int = 10_000
    trust_rate: float = 0.1
    trust_half_life_seconds: float = 7 * 86400.0
    #: writes between saves of the replay positions (and pruning of intent payloads)
    checkpoint_every: int = 1000
    #: HMAC key (hex) for signing audit checkpoints
    audit_key_hex: str | None = None

    @classmethod
    def resolve(
        cls, config_file: str | os.PathLike[str] | None = None, env: Any = None, **overrides: Any
    ) -> CoreConfig:
        """Build a config from a file, then the environment, then ``overrides`` (None means unset)."""
        env = os.environ if env is None else env
        cfg = cls()
        names = {f.name: f for f in fields(cls)}
        path = config_file if config_file is not None else env.get("MEMSTRATA_CONFIG")
        if path:
            for k, v in _read_file(Path(path)).items():
                if k not in names:
                    raise ValueError(f"config file {path}: unknown setting {k!r}; known: {', '.join(sorted(names))}")
                setattr(cfg, k, v)
        for name, f in names.items():
            raw = env.get(f"MEMSTRATA_{name.upper()}")
            if raw is not None:
                setattr(cfg, name, _parse(f"MEMSTRATA_{name.upper()}", raw, f.type))
        for k, v in overrides.items():
            if k not in names:
                raise TypeError(f"{k}: not a MemoryCore setting; known: {', '.join(sorted(names))}")
            if v is not None:
                setattr(cfg, k, v)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        from memstrata.tiers import DURABILITY_LEVELS

        if self.durability not in DURABILITY_LEVELS:
            raise ValueError(f"durability: expected one of {sorted(DURABILITY_LEVELS)}, got {self.durability!r}")
        for name in ("cache_max_bytes", "vector_dim", "events_queue_size", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if not self.table_prefix.replace("_", "").isalnum():
            raise ValueError(f"table_prefix: expected letters, digits and '_', got {self.table_prefix!r}")

    def replace(self, **changes: Any) -> CoreConfig:
        return dataclasses.replace(self, **changes)


def _read_file(path: Path) -> dict[str, Any]:
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
    else:
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            import tomli as tomllib

        data = tomllib.loads(text)
        data = data.get("memstrata", {}).get("core", data)
    if not isinstance(data, dict):
        raise ValueError(f"config file {path}: expected a table of settings")
    return data


def _parse(name: str, raw: str, typ: Any) -> Any:
    t = str(typ)
    low = raw.strip().lower()
    if t.startswith("bool"):
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{name}: expected true/false, got {raw!r}")
    if "None" in t and low in ("", "none"):
        return None
    try:
        if t.startswith("int"):
            return int(raw)
        if t.startswith("float"):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: expected a number, got {raw!r}") from exc
    return raw
