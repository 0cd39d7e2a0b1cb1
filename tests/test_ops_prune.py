"""Pruning: each rule with an injected clock, plan == apply, undo byte-identical, SIGKILL during apply."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memstrata import MemoryStore
from memstrata.codecs import serialize
from memstrata.errors import MemstrataError
from memstrata.ops import (
    PruneConfig,
    PruneRecord,
    apply_plan,
    list_backups,
    plan_prune,
    records_from_store,
    save_plan,
    undo_plan,
)

NOW = 1_800_000_000.0
DAY = 86400.0
CFG = {"migration_interval_seconds": None}


def rec(key: str, **kw: object) -> PruneRecord:
    return PruneRecord(key=key, **kw)  # type: ignore[arg-type]


def keys(plan: dict, strategy: str | None = None, action: str | None = None) -> set[str]:
    return {i["key"] for i in plan["items"] if (strategy is None or i["strategy"] == strategy)
            and (action is None or i["action"] == action)}


def test_time_rules() -> None:
    recs = [
        rec("old", last_used=NOW - 91 * DAY), rec("recent", last_used=NOW - 89 * DAY),
        rec("decision-old", kind="decision", created=NOW - 181 * DAY, last_used=NOW),
        rec("decision-young", kind="decision", created=NOW - 179 * DAY, last_used=NOW - 179 * DAY),
        rec("failed", kind="pattern", executions=3, success_rate=0.0, last_used=NOW - 31 * DAY),
        rec("failed-recent", kind="pattern", executions=3, success_rate=0.0, last_used=NOW - 29 * DAY),
        rec("good-pattern", kind="pattern", executions=3, success_rate=0.9, last_used=NOW - 31 * DAY),
        rec("no-times"),
    ]
    plan = plan_prune(recs, now=NOW, strategies=["time"])
    assert keys(plan, "time", "delete") == {"old", "failed"}
    assert keys(plan, "time", "archive") == {"decision-old"}
    assert plan_prune(recs, PruneConfig(unused_days=80), now=NOW, strategies=["time"])["items"][0]["key"] == "old"
    assert "recent" in keys(plan_prune(recs, PruneConfig(unused_days=80), now=NOW, strategies=["time"]))


def test_performance_rule_needs_min_executions() -> None:
    recs = [rec("bad", success_rate=0.1, executions=5), rec("bad-young", success_rate=0.1, executions=4),
            rec("edge", success_rate=0.2, executions=50), rec("decision", kind="decision", success_rate=0.0, executions=9)]
    plan = plan_prune(recs, now=NOW, strategies=["performance"])
    assert keys(plan) == {"bad"} and "after 5 executions" in plan["items"][0]["reason"]
    assert keys(plan_prune(recs, PruneConfig(min_executions=3), now=NOW, strategies=["performance"])) == \
        {"bad", "bad-young"}


def test_space_rule_lowest_confidence_first_never_above_protection() -> None:
    mb = 2**20
    recs = [rec(f"a{i}", agent="a", size=10 * mb, confidence=c) for i, c in enumerate([0.9, 0.1, 0.5, 0.86, 0.3, 0.85])]
    recs += [rec(f"b{i}", agent="b", size=5 * mb, confidence=0.0) for i in range(3)]
    plan = plan_prune(recs, PruneConfig(agent_max_bytes=35 * mb, total_max_bytes=10**12), now=NOW,
                      strategies=["space"])
    assert [i["key"] for i in plan["items"]] == ["a1", "a4", "a2"]  # 60 -> 30 MB, lowest confidence first
    assert plan["bytes_reclaimed"] == 30 * mb
    tight = plan_prune(recs, PruneConfig(agent_max_bytes=1, total_max_bytes=10**12), now=NOW, strategies=["space"])
    assert {"a0", "a3"}.isdisjoint(keys(tight)) and "a5" in keys(tight)  # 0.9 and 0.86 are protected
    whole = plan_prune(recs, PruneConfig(agent_max_bytes=10**12, total_max_bytes=60 * mb), now=NOW,
                       strategies=["space"])
    assert whole["bytes_reclaimed"] >= 15 * mb and keys(whole) <= {"b0", "b1", "b2", "a1", "a4", "a2", "a5"}


def test_bad_strategy_and_config() -> None:
    with pytest.raises(ValueError, match="strategies: unknown"):
        plan_prune([], strategies=["magic"])
    with pytest.raises(ValueError, match="unknown keys"):
        PruneConfig.from_dict({"unused": 3})


def make_store(path: Path, n: int = 200) -> None:
    with MemoryStore(path, CFG) as s:
        for i in range(n):
            s.store(f"m{i}", {"agent": "a" if i % 2 else "b", "kind": ("memory", "pattern", "decision")[i % 3],
                              "last_used": NOW - (i % 200) * DAY, "created": NOW - (i % 250) * DAY,
                              "success_rate": (i % 10) / 10, "executions": i % 12, "confidence": (i % 100) / 100,
                              "text": "x" * (i * 7 % 500)}, tier=("warm", "cold")[i % 2])
        s.store("plain", [1, 2, 3])


def snapshot(path: Path) -> dict[object, bytes]:
    with MemoryStore(path, read_only=True) as s:
        return {k: serialize(s.retrieve(k)) for k in s.keys()}


def test_plan_apply_undo_on_a_store(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make_store(store)
    before = snapshot(store)
    with MemoryStore(store, read_only=True) as s:
        records = records_from_store(s)
    assert len(records) == 200  # "plain" has none of the fields
    plan = plan_prune(records, now=NOW)
    save_plan(store, plan)
    deleted, archived = keys(plan, action="delete"), keys(plan, action="archive")
    assert deleted and archived
    dry = apply_plan(store, plan["id"], dry_run=True)
    assert dry["applied"] == len(plan["items"]) and snapshot(store) == before
    report = apply_plan(store, plan["id"], backup_repo=tmp_path / "repo")
    assert report["applied"] == len(plan["items"]) and report["skipped"] == []
    assert len(list_backups(tmp_path / "repo")) == 1
    after = snapshot(store)
    assert set(before) - set(after) == deleted  # plan == what apply did
    with MemoryStore(store, read_only=True) as s:
        assert all(s.tier_of(k) == "cold" for k in archived)
    with pytest.raises(MemstrataError, match="already applied"):
        apply_plan(store, plan["id"])
    undo_plan(store, plan["id"])
    assert snapshot(store) == before


def test_apply_skips_values_changed_since_the_plan(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make_store(store, 30)
    with MemoryStore(store, read_only=True) as s:
        plan = plan_prune(records_from_store(s), now=NOW)
    save_plan(store, plan)
    victim = sorted(keys(plan, action="delete"))[0]
    with MemoryStore(store, CFG) as s:
        s.store(victim, {"agent": "a", "last_used": NOW})
    report = apply_plan(store, plan["id"])
    assert {"key": victim, "reason": "changed since the plan"} in report["skipped"]
    with MemoryStore(store, read_only=True) as s:
        assert s.retrieve(victim) == {"agent": "a", "last_used": NOW}


def test_sigkill_during_apply_leaves_the_store_intact_and_undoable(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make_store(store, 3000)
    before = snapshot(store)
    with MemoryStore(store, read_only=True) as s:
        plan = plan_prune(records_from_store(s), now=NOW)
    save_plan(store, plan)
    code = f"from memstrata.ops import apply_plan; apply_plan({str(store)!r}, {plan['id']!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    undo = store / "ops" / "undo" / f"{plan['id']}.msgpack"
    deadline = time.monotonic() + 60
    while not undo.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with MemoryStore(store, read_only=True) as s:
        assert s.verify()["ok"]
    after = snapshot(store)
    assert set(before) - set(after) <= keys(plan, action="delete")
    undo_plan(store, plan["id"])
    assert snapshot(store) == before


def test_plan_over_100k_records_uses_every_strategy() -> None:
    import random

    rng = random.Random(1)
    recs = [rec(f"k{i}", agent=f"agent{i % 7}", kind=("memory", "pattern", "decision")[i % 3],
                last_used=NOW - rng.random() * 200 * DAY, success_rate=rng.random(), executions=rng.randrange(20),
                confidence=rng.random(), size=rng.randrange(100, 5000)) for i in range(100_000)]
    plan = plan_prune(recs, PruneConfig(agent_max_bytes=10 * 2**20), now=NOW)
    assert plan["n_records"] == 100_000 and plan["by_strategy"]["time"] > 0 and plan["by_strategy"]["space"] > 0
