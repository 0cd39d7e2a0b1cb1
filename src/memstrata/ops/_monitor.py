"""Monitoring: metrics of a store, health checks, and alerts with severities, thresholds and resolution."""

from __future__ import annotations

import json
import os
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from memstrata.errors import MemstrataError
from memstrata.ops._state import SectionConfig, ops_dir, read_json, write_json

__all__ = ["SEVERITIES", "AlertConfig", "collect_metrics", "evaluate_alerts", "health_checks", "metric_history"]

SEVERITIES = ("INFO", "WARNING", "ERROR", "CRITICAL")
MiB = 2**20


@dataclass(frozen=True)
class AlertConfig(SectionConfig):
    """Alert thresholds (bytes, milliseconds, fractions, hours, days)."""

    section: ClassVar[str] = "alert"
    agent_warning_bytes: int = 60 * MiB
    agent_critical_bytes: int = 80 * MiB
    global_warning_bytes: int = 600 * MiB
    global_critical_bytes: int = 800 * MiB
    query_warning_ms: float = 100.0
    hit_rate_warning: float = 0.50
    backup_warning_hours: float = 26.0
    retention_days: float = 30.0


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def collect_metrics(
    store: Any,
    *,
    backup_repo: str | os.PathLike[str] | None = None,
    sample: int = 200,
    by_agent: bool = True,
    now: float | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """Sizes per tier, agent and kind, counts, compression and dedup ratios, a latency sample, backup age.

    ``store`` is a path (opened read-only) or an open :class:`MemoryStore` (its
    own hit rate is then the live one). With ``record`` the figures are
    appended to ``STORE/ops/metrics.jsonl`` for the report's plots.
    """
    from memstrata.store import MemoryStore

    t = time.time() if now is None else float(now)
    own = not isinstance(store, MemoryStore)
    s = MemoryStore(store, read_only=True) if own else store
    try:
        st = s.get_statistics()
        keys = list(s.keys())
        rng = random.Random(0)
        picked = rng.sample(keys, min(sample, len(keys)))
        lat, errors = [], []
        for k in picked:
            t0 = time.perf_counter()
            try:
                s.retrieve(k)
            except Exception as exc:  # damage is reported by the health check, not raised
                errors.append(f"{k!r}: {type(exc).__name__}: {exc}")
            lat.append((time.perf_counter() - t0) * 1e3)
        agents: dict[str, int] = defaultdict(int)
        kinds: dict[str, int] = defaultdict(int)
        if by_agent:
            from memstrata.ops._prune import records_from_store

            for r in records_from_store(s):
                if r.agent is not None:
                    agents[str(r.agent)] += r.size
                kinds[r.kind] += r.size
        path = s.path
    finally:
        if own:
            s.close()
    ts, o = st["tiered_storage"], st["overall"]
    m: dict[str, Any] = {
        "time": t,
        "store": None if path is None else str(path),
        "keys": o["keys"],
        "bytes": {"raw": o["raw_bytes"], "stored": o["stored_bytes"], "disk": o["disk_bytes"],
                  "hot": ts["hot"]["bytes"], "warm": ts["warm"]["bytes"], "cold": ts["cold"]["bytes"]},
        "items": {"hot": ts["hot"]["items"], "warm": ts["warm"]["items"], "cold": ts["cold"]["items"]},
        "agents_bytes": dict(agents),
        "kinds_bytes": dict(kinds),
        "compression_ratio": st["compression"].get("ratio"),
        "dedup_ratio": st["deduplication"]["dedup_ratio"],
        "tombstones": ts["tombstones"],
        "garbage_blobs": st["deduplication"]["garbage_blobs"],
        "query_ms": {"n": len(lat), "p50": _percentile(lat, 50), "p99": _percentile(lat, 99),
                     "max": max(lat) if lat else None},
        "hit_rate": None if own else st["middleware"]["hit_rate"],
        "read_errors": errors,
        "backup_age_seconds": _backup_age(path, backup_repo, t),
    }
    if record and path is not None:
        with open(ops_dir(path) / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({k: v for k, v in m.items() if k != "read_errors"}) + "\n")
    return m


def _backup_age(path: Path | None, repo: str | os.PathLike[str] | None, now: float) -> float | None:
    from memstrata.ops._repo import BackupError, list_backups

    if path is None:
        return None
    repo = repo if repo is not None else path / "ops" / "backups"
    try:
        mine = [m["created"] for m in list_backups(repo) if m["source"] == str(Path(path).resolve())]
    except (BackupError, FileNotFoundError):
        return None
    return now - max(mine) if mine else None


def metric_history(store: str | os.PathLike[str], limit: int = 10_000) -> list[dict[str, Any]]:
    """The recorded metrics, oldest first (a torn last line from a crash is skipped)."""
    p = Path(store, "ops", "metrics.jsonl")
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines()[-limit:]:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def health_checks(store: str | os.PathLike[str], metrics: dict[str, Any], config: AlertConfig | None = None
                  ) -> list[dict[str, Any]]:
    """Layout, limits, index freshness, backup recency, an integrity sample and a latency sample."""
    cfg = config or AlertConfig()
    p = Path(store)
    checks = []

    def add(name: str, ok: bool, severity: str, detail: str) -> None:
        checks.append({"name": name, "ok": ok, "severity": "INFO" if ok else severity, "detail": detail})

    from memstrata.store import format_version, is_store

    try:
        fmt: int | None = format_version(p) if is_store(p) else None
    except (OSError, MemstrataError):
        fmt = None
    if fmt is None:
        add("layout", False, "CRITICAL", f"{p} is not a readable memstrata store")
    else:
        add("layout", fmt == 2, "WARNING", f"format {fmt} store" + ("" if fmt == 2 else
            f" (read-only until converted: memstrata upgrade {p})"))
    total = metrics["bytes"]["stored"]
    add("limits", total < cfg.global_warning_bytes, "CRITICAL" if total >= cfg.global_critical_bytes else "WARNING",
        f"{total / MiB:.1f} MiB stored (warning {cfg.global_warning_bytes / MiB:.0f}, "
        f"critical {cfg.global_critical_bytes / MiB:.0f})")
    wal = p / "store.sqlite-wal"  # format 1 only: committed pages not yet in the database file
    wal_bytes = wal.stat().st_size if fmt == 1 and wal.exists() else 0
    stale = metrics["tombstones"] + metrics["garbage_blobs"]
    add("index_freshness", wal_bytes < 256 * MiB and stale <= max(1000, metrics["keys"]), "WARNING",
        (f"WAL {wal_bytes / MiB:.1f} MiB not checkpointed; " if fmt == 1 else "")
        + f"{stale} tombstones and garbage blobs to compact")
    age = metrics["backup_age_seconds"]
    add("backup_recency", age is not None and age < cfg.backup_warning_hours * 3600, "WARNING",
        "no backup in the repository" if age is None else f"newest backup {age / 3600:.1f} h old")
    errs = metrics["read_errors"]
    add("integrity_sample", not errs, "CRITICAL",
        f"{metrics['query_ms']['n']} random values read and checked" + (f"; {len(errs)} failed: {errs[:3]}" if errs else ""))
    p99 = metrics["query_ms"]["p99"]
    add("latency_sample", p99 is None or p99 <= cfg.query_warning_ms, "WARNING",
        "no keys" if p99 is None else f"p99 {p99:.2f} ms over {metrics['query_ms']['n']} reads")
    return checks


def _conditions(metrics: dict[str, Any], health: list[dict[str, Any]], cfg: AlertConfig) -> list[dict[str, Any]]:
    out = []

    def level(value: float, warning: float, critical: float) -> str | None:
        return "CRITICAL" if value >= critical else "WARNING" if value >= warning else None

    for agent, size in metrics["agents_bytes"].items():
        sev = level(size, cfg.agent_warning_bytes, cfg.agent_critical_bytes)
        if sev:
            out.append({"id": f"agent_memory:{agent}", "severity": sev, "value": size,
                        "message": f"agent {agent} holds {size / MiB:.1f} MiB"})
    total = metrics["bytes"]["stored"]
    sev = level(total, cfg.global_warning_bytes, cfg.global_critical_bytes)
    if sev:
        out.append({"id": "global_memory", "severity": sev, "value": total, "message": f"store holds {total / MiB:.1f} MiB"})
    p99 = metrics["query_ms"]["p99"]
    if p99 is not None and p99 > cfg.query_warning_ms:
        out.append({"id": "query_time", "severity": "WARNING", "value": p99,
                    "message": f"query p99 {p99:.1f} ms > {cfg.query_warning_ms:g} ms"})
    hr = metrics.get("hit_rate")
    if hr is not None and hr < cfg.hit_rate_warning:
        out.append({"id": "cache_hit_rate", "severity": "WARNING", "value": hr,
                    "message": f"cache hit rate {hr:.0%} < {cfg.hit_rate_warning:.0%}"})
    for c in health:
        if not c["ok"] and c["name"] not in ("limits", "latency_sample"):  # those two are alerts above
            out.append({"id": f"health:{c['name']}", "severity": "ERROR" if c["severity"] == "WARNING"
                        and c["name"] == "index_freshness" else c["severity"], "value": None, "message": c["detail"]})
    return out


def evaluate_alerts(
    store: str | os.PathLike[str],
    metrics: dict[str, Any],
    health: list[dict[str, Any]],
    config: AlertConfig | None = None,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Open, update and resolve alerts in ``STORE/ops/alerts.json``; drop resolved ones past retention."""
    cfg = config or AlertConfig()
    t = time.time() if now is None else float(now)
    path = ops_dir(store) / "alerts.json"
    state = read_json(path, {"active": {}, "resolved": []})
    current = {c["id"]: c for c in _conditions(metrics, health, cfg)}
    active: dict[str, Any] = state["active"]
    opened, resolved = [], []
    for aid, c in current.items():
        if aid in active:
            active[aid].update(severity=c["severity"], message=c["message"], value=c["value"], last_seen=t)
        else:
            active[aid] = dict(c, first_seen=t, last_seen=t)
            opened.append(aid)
    for aid in [a for a in active if a not in current]:
        resolved.append(aid)
        state["resolved"].append(dict(active.pop(aid), resolved_at=t))
    state["resolved"] = [a for a in state["resolved"] if a["resolved_at"] >= t - cfg.retention_days * 86400]
    state["config"] = asdict(cfg)
    write_json(path, state)
    worst = max((SEVERITIES.index(a["severity"]) for a in active.values()), default=-1)
    return {"active": active, "opened": opened, "resolved_now": resolved, "resolved": state["resolved"],
            "worst": SEVERITIES[worst] if worst >= 0 else None}
