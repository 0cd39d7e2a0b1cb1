"""Pruning as plans: time-, performance- and space-based rules over stored records, apply with undo.

The rules see only :class:`PruneRecord` values, so they do not care where
records come from; :func:`records_from_store` reads them from a store (every
mapping value that carries at least one of the documented fields).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from memstrata.errors import MemstrataError
from memstrata.ops._state import SectionConfig, atomic_write, ops_dir, read_json, write_json

__all__ = [
    "PruneConfig", "PruneRecord", "apply_plan", "list_plans", "load_plan", "plan_prune", "records_from_store", "save_plan", "undo_plan",
]

DAY = 86400.0
STRATEGIES = ("time", "performance", "space")
FIELDS = ("last_used", "success_rate", "executions", "confidence", "agent")


# alike in shape only to TuneConfig (ops/_tune.py): two frozen dataclasses of different fields
# and defaults; what they share, reading their section from a dict, is _state.SectionConfig's
@dataclass(frozen=True)
class PruneConfig(SectionConfig):
    """Thresholds of the three strategies (days, fractions, bytes)."""

    section: ClassVar[str] = "prune"
    unused_days: float = 90.0
    decision_archive_days: float = 180.0
    failed_pattern_days: float = 30.0
    min_success_rate: float = 0.20
    min_executions: int = 5
    agent_max_bytes: int = 80 * 2**20
    total_max_bytes: int = 800 * 2**20
    protect_confidence: float = 0.85


@dataclass(frozen=True)
class PruneRecord:
    """What the rules look at; ``kind`` is ``memory``, ``pattern`` or ``decision``; times are Unix seconds."""

    key: str | bytes
    kind: str = "memory"
    agent: str | None = None
    last_used: float | None = None
    created: float | None = None
    success_rate: float | None = None
    executions: int = 0
    confidence: float | None = None
    size: int = 0
    digest: str = ""


def records_from_store(store: Any) -> list[PruneRecord]:
    """Every mapping value of ``store`` (an open :class:`MemoryStore`) with a documented field, as records."""
    from memstrata.codecs import serialize

    out = []
    for key in store.keys():
        value = store.retrieve(key, None)
        if not isinstance(value, dict) or not any(f in value for f in FIELDS):
            continue
        data = serialize(value)
        out.append(PruneRecord(
            key=key,
            kind=str(value.get("kind", "memory")),
            agent=value.get("agent"),
            last_used=_num(value.get("last_used")),
            created=_num(value.get("created", value.get("timestamp"))),
            success_rate=_num(value.get("success_rate")),
            executions=int(value.get("executions", 0) or 0),
            confidence=_num(value.get("confidence")),
            size=len(data),
            digest=hashlib.sha256(data).hexdigest(),
        ))
    return out


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def plan_prune(
    records: Iterable[PruneRecord],
    config: PruneConfig | None = None,
    *,
    now: float | None = None,
    strategies: Sequence[str] = STRATEGIES,
) -> dict[str, Any]:
    """The plan: which keys to delete or archive, why, and the bytes reclaimed. Nothing is changed."""
    cfg = config or PruneConfig()
    bad = sorted(set(strategies) - set(STRATEGIES))
    if bad:
        raise ValueError(f"strategies: unknown {bad}; expected some of {list(STRATEGIES)}")
    t = time.time() if now is None else float(now)
    recs = list(records)
    chosen: dict[Any, dict[str, Any]] = {}

    def take(r: PruneRecord, action: str, strategy: str, reason: str) -> None:
        if r.key not in chosen:
            chosen[r.key] = {"key": r.key, "action": action, "strategy": strategy, "reason": reason,
                             "bytes": r.size if action == "delete" else 0, "agent": r.agent, "digest": r.digest}

    if "time" in strategies:
        unused, archive, failed = t - cfg.unused_days * DAY, t - cfg.decision_archive_days * DAY, \
            t - cfg.failed_pattern_days * DAY
        for r in recs:
            last = r.last_used if r.last_used is not None else r.created
            if last is None:
                continue
            if r.kind == "decision":
                born = r.created if r.created is not None else last
                if born < archive:
                    take(r, "archive", "time", f"decision older than {cfg.decision_archive_days:g} days")
            elif r.kind == "pattern" and r.executions and not r.success_rate and last < failed:
                take(r, "delete", "time", f"failed pattern unused for {cfg.failed_pattern_days:g} days")
            elif last < unused:
                take(r, "delete", "time", f"unused for {(t - last) / DAY:.0f} days (> {cfg.unused_days:g})")
    if "performance" in strategies:
        for r in recs:
            if (r.kind != "decision" and r.success_rate is not None and r.executions >= cfg.min_executions
                    and r.success_rate < cfg.min_success_rate):
                take(r, "delete", "performance", f"success rate {r.success_rate:.0%} < {cfg.min_success_rate:.0%} "
                                                 f"after {r.executions} executions")
    if "space" in strategies:
        _plan_space(recs, cfg, chosen, take)
    items = list(chosen.values())
    body = {"created": t, "config": asdict(cfg), "strategies": list(strategies), "items": items}
    digest = hashlib.sha256(repr(sorted((repr(i["key"]), i["action"], i["digest"]) for i in items)).encode())
    return {"id": time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + "-" + digest.hexdigest()[:8], **body,
            "n_records": len(recs), "bytes_reclaimed": sum(i["bytes"] for i in items),
            "by_strategy": {s: sum(1 for i in items if i["strategy"] == s) for s in strategies}}


def _plan_space(recs: list[PruneRecord], cfg: PruneConfig, chosen: dict[Any, Any], take: Callable[..., None]) -> None:
    """Lowest confidence first, never above ``protect_confidence``, until each agent and the whole fit."""
    def live_size(rs: Iterable[PruneRecord]) -> int:
        return sum(r.size for r in rs if chosen.get(r.key, {}).get("action") != "delete")

    def candidates(rs: Iterable[PruneRecord]) -> list[PruneRecord]:
        c = [r for r in rs if r.key not in chosen and (r.confidence or 0.0) <= cfg.protect_confidence]
        return sorted(c, key=lambda r: (r.confidence or 0.0, r.last_used or 0.0))

    by_agent: dict[Any, list[PruneRecord]] = defaultdict(list)
    for r in recs:
        by_agent[r.agent].append(r)
    for agent, rs in by_agent.items():
        size = live_size(rs)
        if agent is None or size <= cfg.agent_max_bytes:
            continue
        for r in candidates(rs):
            if size <= cfg.agent_max_bytes:
                break
            take(r, "delete", "space", f"agent {agent} holds {size / 2**20:.1f} MiB > "
                                       f"{cfg.agent_max_bytes / 2**20:.0f} MiB; confidence {r.confidence or 0:.2f}")
            size -= r.size
    size = live_size(recs)
    for r in candidates(recs) if size > cfg.total_max_bytes else ():
        if size <= cfg.total_max_bytes:
            break
        take(r, "delete", "space", f"store holds {size / 2**20:.1f} MiB > {cfg.total_max_bytes / 2**20:.0f} MiB; "
                                   f"confidence {r.confidence or 0:.2f}")
        size -= r.size


# ------------------------------------------------------------ persist --

def _key_json(key: str | bytes) -> Any:
    return {"hex": key.hex()} if isinstance(key, bytes) else key


def _key_from_json(key: Any) -> str | bytes:
    return bytes.fromhex(key["hex"]) if isinstance(key, dict) else key


def save_plan(store: str | os.PathLike[str], plan: dict[str, Any]) -> Path:
    """Keep ``plan`` in ``STORE/ops/plans/<id>.json`` for a later apply."""
    path = ops_dir(store, "plans") / f"{plan['id']}.json"
    body = dict(plan, items=[dict(i, key=_key_json(i["key"])) for i in plan["items"]], status="planned")
    write_json(path, body)
    return path


def list_plans(store: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every saved plan of ``store``: id, status, item count, bytes reclaimed and creation time."""
    plans = []
    for p in sorted(Path(store, "ops", "plans").glob("*.json")):
        body = read_json(p)
        plans.append({"id": body["id"], "status": body.get("status"), "items": len(body["items"]),
                      "bytes_reclaimed": body["bytes_reclaimed"], "created": body["created"]})
    return plans


def load_plan(store: str | os.PathLike[str], plan_id: str) -> dict[str, Any]:
    plan = read_json(Path(store, "ops", "plans", f"{plan_id}.json"))
    if plan is None:
        raise MemstrataError(f"plan_id: no plan {plan_id!r} in {Path(store, 'ops', 'plans')}")
    plan["items"] = [dict(i, key=_key_from_json(i["key"])) for i in plan["items"]]
    return dict(plan)


def _set_status(store: str | os.PathLike[str], plan: dict[str, Any], **changes: Any) -> None:
    plan.update(changes)
    body = dict(plan, items=[dict(i, key=_key_json(i["key"])) for i in plan["items"]])
    write_json(Path(store, "ops", "plans", f"{plan['id']}.json"), body)


def apply_plan(
    store_path: str | os.PathLike[str],
    plan_id: str,
    *,
    backup_repo: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Execute a saved plan: backup (into ``backup_repo``), undo point, then the deletes and archives.

    An item whose value changed since the plan was made is skipped (and
    reported), so apply never removes something the plan did not see.
    """
    from memstrata.codecs import serialize
    from memstrata.ops._backup import create_backup
    from memstrata.store import MemoryStore

    plan = load_plan(store_path, plan_id)
    if plan.get("status") in ("applied", "undone"):
        raise MemstrataError(f"plan_id: plan {plan_id} is already {plan['status']}")
    with MemoryStore(store_path, {"migration_interval_seconds": None}) as store:
        undo, todo, skipped = [], [], []
        for item in plan["items"]:
            value = store.retrieve(item["key"], None)
            data = None if value is None else serialize(value)
            if data is None or hashlib.sha256(data).hexdigest() != item["digest"]:
                skipped.append({"key": item["key"], "reason": "missing" if data is None else "changed since the plan"})
                continue
            undo.append([item["key"], data, store.tier_of(item["key"]), item["action"]])
            todo.append(item)
        report: dict[str, Any] = {"plan": plan_id, "applied": len(todo), "skipped": skipped, "dry_run": dry_run,
                                  "bytes_reclaimed": sum(i["bytes"] for i in todo), "backup": None}
        if dry_run:
            return report
        if backup_repo is not None:
            report["backup"] = create_backup(store_path, backup_repo)["id"]
        atomic_write(ops_dir(store_path, "undo") / f"{plan_id}.msgpack", serialize(undo))
        _set_status(store_path, plan, status="applying", backup=report["backup"])
        # every delete in one batch: a crash leaves all of them done or none (the undo point is already written)
        store.delete_many([item["key"] for item in todo if item["action"] == "delete"])
        for item in todo:
            if item["action"] != "delete":
                store.migrate(item["key"], "cold")
        _set_status(store_path, plan, status="applied", applied_at=time.time(), applied=len(todo), skipped=skipped)
    return report


def undo_plan(store_path: str | os.PathLike[str], plan_id: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Put back every value a plan deleted or archived, byte for byte (checked after writing)."""
    from memstrata.codecs import deserialize, serialize
    from memstrata.store import MemoryStore

    plan = load_plan(store_path, plan_id)
    path = Path(store_path, "ops", "undo", f"{plan_id}.msgpack")
    if not path.exists():
        raise MemstrataError(f"plan_id: plan {plan_id} has no undo point (status {plan.get('status')!r})")
    entries = deserialize(path.read_bytes())
    if dry_run:
        return {"plan": plan_id, "restored": len(entries), "dry_run": True}
    with MemoryStore(store_path, {"migration_interval_seconds": None}) as store:
        by_tier: dict[Any, list[tuple[Any, Any]]] = defaultdict(list)  # tier names as the undo point recorded them
        for key, data, tier, _action in entries:
            by_tier[tier].append((key, deserialize(data)))
        for tier, items in by_tier.items():  # one commit per thousand values, not one per value
            store.store_many(items, tier=tier)
        bad = [k for k, data, _t, _a in entries if serialize(store.retrieve(k)) != data]
    if bad:
        raise MemstrataError(f"undo {plan_id}: {len(bad)} values did not read back byte-identical, first {bad[0]!r}")
    _set_status(store_path, plan, status="undone", undone_at=time.time())
    return {"plan": plan_id, "restored": len(entries), "dry_run": False}
