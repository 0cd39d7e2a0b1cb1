"""Every ops command as a subprocess: --json parsed, exit codes checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memstrata import MemoryStore

NOW = 1_800_000_000.0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("memstrata")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "memstrata.cli", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def ok(*args: str) -> object:
    proc = run(*args, "--json")
    assert proc.returncode == 0, (args, proc.stderr)
    return json.loads(proc.stdout)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    p = tmp_path / "store"
    with MemoryStore(p, {"migration_interval_seconds": None}) as s:
        for i in range(120):
            s.store(f"m{i}", {"agent": "a", "kind": "memory", "last_used": NOW - i * 86400, "confidence": 0.5,
                              "text": f"memory {i}"}, tier=("warm", "cold")[i % 2])
    return p


def test_store_commands(store: Path) -> None:
    assert ok("stats", str(store))["overall"]["keys"] == 120
    assert ok("verify", str(store))["ok"] is True
    assert ok("optimize", "compact", str(store), "--dry-run")["dry_run"] is True
    assert ok("optimize", "compact", str(store))["blobs_removed"] == 0
    assert isinstance(ok("optimize", "tiers", str(store)), dict)
    assert ok("migrate", "detect", str(store))["version"] == 2
    assert ok("migrate", "run", str(store), "--to", "2", "--dry-run")["steps"] == []
    locked = MemoryStore(store)
    try:
        proc = run("optimize", "tiers", str(store), "--json")
        assert proc.returncode == 4 and "open for writing" in proc.stderr
    finally:
        locked.close()
    missing = run("verify", str(store / "nope"))
    assert missing.returncode == 1 and "not a memstrata store" in missing.stderr
    assert run("backup", "create", "--bogus").returncode == 2


def test_backup_commands(store: Path, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    dry = ok("backup", "create", str(store), repo, "--dry-run")
    assert dry["dry_run"] is True and not Path(repo).exists()
    first = ok("backup", "create", str(store), repo)
    second = ok("backup", "create", str(store), repo)
    assert first["kind"] == "full" and second["kind"] == "incremental"
    assert [b["id"] for b in ok("backup", "list", repo)] == [first["id"], second["id"]]
    assert ok("backup", "verify", repo, "--drill")["ok"] is True
    assert ok("backup", "restore", repo, str(tmp_path / "t"), "--dry-run")["ok"] is True
    r = ok("backup", "restore", repo, str(tmp_path / "t"), "--seq", str(first["seq"]))
    assert r["snapshot"] in (first["id"], second["id"]) and ok("verify", str(tmp_path / "t"))["ok"]
    assert ok("backup", "rotate", repo, "--keep-last", "1", "--dry-run")["forget"] == [first["id"]]
    assert ok("backup", "rotate", repo, "--keep-last", "1")["forget"] == [first["id"]]
    chunk = next(p for p in Path(repo, "chunks").rglob("*") if p.is_file())
    chunk.write_bytes(b"garbage")
    bad = run("backup", "verify", repo, "--json")
    assert bad.returncode == 3 and json.loads(bad.stdout)["ok"] is False
    assert run("backup", "restore", repo, str(tmp_path / "t2"), "--json").returncode == 1


def test_prune_commands(store: Path) -> None:
    plan = ok("prune", "plan", str(store), "--now", str(NOW))
    assert len(plan["items"]) == 120 - 91 and all(i["strategy"] == "time" for i in plan["items"])
    assert ok("prune", "list", str(store))[0]["status"] == "planned"
    assert ok("prune", "apply", str(store), plan["id"], "--dry-run")["applied"] == 29
    applied = ok("prune", "apply", str(store), plan["id"])
    assert applied["applied"] == 29 and applied["backup"]
    assert ok("stats", str(store))["overall"]["keys"] == 91
    assert ok("prune", "undo", str(store), plan["id"])["restored"] == 29
    assert ok("stats", str(store))["overall"]["keys"] == 120
    again = run("prune", "apply", str(store), plan["id"], "--json")
    assert again.returncode == 1 and "already undone" in again.stderr


def test_monitor_and_tune_commands(store: Path, tmp_path: Path) -> None:
    m = ok("monitor", "metrics", str(store))
    assert m["keys"] == 120 and m["agents_bytes"]["a"] > 0
    prom = run("monitor", "metrics", str(store), "--prometheus")
    assert prom.returncode == 0 and "memstrata_keys 120.0" in prom.stdout
    health = run("monitor", "health", str(store), "--json")
    assert health.returncode == 3 and not json.loads(health.stdout)["ok"]  # no backup yet
    ok("backup", "create", str(store), str(store / "ops" / "backups"))
    assert ok("monitor", "health", str(store))["ok"] is True
    cfg = tmp_path / "alerts.json"
    cfg.write_text(json.dumps({"global_warning_bytes": 1, "global_critical_bytes": 2}))
    crit = run("monitor", "alerts", str(store), "--config", str(cfg), "--json")
    assert crit.returncode == 3 and json.loads(crit.stdout)["worst"] == "CRITICAL"
    assert ok("monitor", "alerts", str(store))["resolved_now"] == ["global_memory"]
    report = ok("monitor", "report", str(store), str(tmp_path / "r.html"))
    assert report["samples"] >= 4 and "<svg" in (tmp_path / "r.html").read_text()
    assert "changes" in ok("tune", "plan", str(store))


def test_upgrade_and_repair_call_the_engine(store: Path) -> None:
    assert isinstance(ok("upgrade", str(store)), dict)
    assert isinstance(ok("repair", str(store)), dict)
    assert ok("verify", str(store))["ok"]


def test_migrate_run_converts_a_format_1_store(tmp_path: Path) -> None:
    golden = Path(__file__).resolve().parent / "golden" / "stores-v1" / "mixed"
    store = tmp_path / "v1"
    shutil.copytree(golden, store)
    assert ok("migrate", "detect", str(store))["version"] == 1
    dry = ok("migrate", "run", str(store), "--to", "2", "--dry-run")
    assert len(dry["steps"]) == 1 and ok("migrate", "detect", str(store))["version"] == 1
    done = ok("migrate", "run", str(store), "--to", "2")
    assert done["version"] == 2 and done["backup"] and ok("verify", str(store))["ok"] is True
    back = run("migrate", "run", str(store), "--to", "1", "--json")
    assert back.returncode == 1 and "no registered migration 2 -> 1" in back.stderr


def test_every_command_has_help_with_examples() -> None:
    from memstrata.cli import cli

    leaves = []
    for name, cmd in cli.commands.items():
        sub = getattr(cmd, "commands", None)
        leaves += [[name, s] for s in sub] if sub else [[name]]
    assert len(leaves) >= 15
    for path in leaves:
        proc = run(*path, "--help")
        assert proc.returncode == 0 and "Examples:" in proc.stdout, path
        if path[0] not in ("demo",):
            assert "--json" in proc.stdout, path
