"""Damage campaign over trace databases: the shared part of the test and the long benchmark run.

A trace database is written (traces of every type, deltas, dictionaries,
replaced ids, a retention run), closed (or, ``unclosed``, left as a killed
writer leaves it, WAL and all), copied, damaged once (any file of it:
the database or its mark file; any kind of ``faults.damage``), then opened and
read in full. Each injection is classified:

- ``read right``: every read returned exactly what was written (or the damage
  had no effect);
- ``detected``: an open or a read raised a ``MemstrataError`` (naming the file),
  or ``verify()`` named the damage;
- ``wrong value``: a read returned data other than what was written;
- ``lost, verify() ok``: a trace or delta was missing while ``verify()`` said ok;
- ``foreign exception``: anything but ``MemstrataError`` escaped.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from faults.damage import DAMAGES

from memstrata import MemstrataError
from memstrata.traces import SymbolicTraceMemory, TraceType

T0 = 1_763_700_000.0
OUTCOMES = ("read right", "detected", "wrong value", "lost, verify() ok", "foreign exception")


def build(root: Path, *, unclosed: bool = False) -> tuple[Path, Path, dict[str, Any]]:
    """Write the database (and an older copy of it, for ``stale_copy``); returns ``(db, stale, expected)``.

    ``unclosed``: the files as a writer killed after its last acknowledged
    flush leaves them (the database, its WAL and mark file, copied while open).
    """
    root.mkdir(parents=True, exist_ok=True)
    db, stale_dir = root / "traces.db", root / "stale"
    now = [T0]
    cfg = {"db_path": str(db), "train_after": 48, "type_train_after": 24, "dictionary_bytes": 1024,
           "flush_every": 40, "retention_days": 5}
    expected: dict[str, Any] = {}
    with SymbolicTraceMemory(cfg, clock=lambda: now[0]) as mem:
        for i in range(90):
            now[0] = T0 + i * 3600.0
            tid = f"op-{i % 70}"
            data = {"op": ["simplify", "expand", "factor"][i % 3], "arg": f"(f x{i} y)", "cost": i}
            mem.store_compressed_trace_sync(tid, data, TraceType.SYMBOLIC_OPERATION, {"src": "camp", "i": i})
            expected[tid] = data
            if i % 9 == 0:
                mem.log_fitness_evolution_sync(i, {"best": i / 100})
                expected[f"fitness_evo:{i}"] = {"generation": i, "fitness": {"best": i / 100}}
                mem.log_benchmark_result_sync(f"g{i}", {"pass_rate": i / 90})
                expected[f"benchmark:g{i}"] = {"pass_rate": i / 90}
            if i == 45:
                stale_dir.mkdir(exist_ok=True)
                mem.flush_sync()
                mem._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                for f in root.glob("traces.db*"):
                    shutil.copyfile(f, stale_dir / f.name)
        mem.log_breakthrough_sync("b1", {"new_best": 0.9})
        expected["breakthrough:b1"] = {"new_best": 0.9}
        for i in range(6):
            mem.log_performance_delta_sync("latency_ms", 100.0 + i, 90.0 + i)
        mem.apply_retention_sync()
        live = {t.trace_id for t in mem.traces_sync()}
        expected = {k: v for k, v in expected.items() if k in live}
        for t in mem.traces_sync(type=TraceType.PERFORMANCE_DELTA):
            expected[t.trace_id] = mem.decompress_trace(t)
        history = [(d.old_value, d.new_value, d.delta_direction) for d in mem.performance_history_sync("latency_ms")]
        assert mem.verify_sync()["ok"]
        if unclosed:
            mem.store_compressed_trace_sync("after-close", {"op": "late"}, TraceType.SYMBOLIC_OPERATION)
            expected["after-close"] = {"op": "late"}
            mem.flush_sync()
            killed = root / "killed"
            killed.mkdir()
            for f in root.glob("traces.db*"):
                shutil.copyfile(f, killed / f.name)
            db = killed / db.name
    return db, stale_dir, {"traces": expected, "history": history}


def inject(db: Path, stale_dir: Path, expected: dict[str, Any], work: Path, rng: random.Random,
           kind: str) -> tuple[str, str]:
    """One damaged copy, opened and read in full: ``(outcome, what was done)``."""
    work.mkdir(parents=True, exist_ok=True)
    files = sorted(db.parent.glob("traces.db*"))
    for f in files:
        shutil.copyfile(f, work / f.name)
    target = work / rng.choice([f.name for f in files])
    what = DAMAGES[kind](target, rng, stale=stale_dir / target.name)
    try:
        return classify(work / db.name, expected), what
    finally:
        shutil.rmtree(work, ignore_errors=True)


def classify(path: Path, expected: dict[str, Any]) -> str:
    try:
        return _read_all(path, expected)
    except MemstrataError:
        return "detected"
    except Exception:  # the point of the campaign
        return "foreign exception"


def _read_all(path: Path, expected: dict[str, Any]) -> str:
    traces = expected["traces"]
    detected = lost = False
    with SymbolicTraceMemory({"db_path": str(path)}) as mem:
        for tid, value in traces.items():
            try:
                got = mem.get_trace_sync(tid)
            except MemstrataError:
                detected = True
                continue
            if got is None:
                lost = True
            elif got != value:
                return "wrong value"
        try:
            listed = mem.traces_sync()
        except MemstrataError:
            detected = True
        else:
            for t in listed:
                if t.trace_id not in traces or mem.decompress_trace(t) != traces[t.trace_id]:
                    return "wrong value"
            lost |= {t.trace_id for t in listed} != set(traces)
        try:
            history = [(d.old_value, d.new_value, d.delta_direction)
                       for d in mem.performance_history_sync("latency_ms")]
        except MemstrataError:
            detected = True
        else:
            if any(h not in expected["history"] for h in history):
                return "wrong value"
            lost |= len(history) != len(expected["history"])
        report = mem.verify_sync()
    if not report["ok"]:
        return "detected"
    if lost:
        return "lost, verify() ok"
    return "detected" if detected else "read right"


def campaign(root: Path, n: int, seed: int, *, unclosed: bool = False) -> tuple[Counter[str], list[str]]:
    """``n`` seeded injections; the outcome counts and the description of every bad one."""
    db, stale, expected = build(root / "source", unclosed=unclosed)
    rng = random.Random(seed)
    kinds = sorted(DAMAGES)
    counts: Counter[str] = Counter({o: 0 for o in OUTCOMES})
    bad: list[str] = []
    for i in range(n):
        outcome, what = inject(db, stale, expected, root / f"w{i}", rng, kinds[i % len(kinds)])
        counts[outcome] += 1
        if outcome in ("wrong value", "lost, verify() ok", "foreign exception"):
            bad.append(f"{outcome}: {what}")
    return counts, bad
