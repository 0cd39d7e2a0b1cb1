"""The ``memstrata`` command, run as a separate process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memstrata import MemoryStore
from memstrata.store import is_store


def run(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("memstrata")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "memstrata.cli", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("demo")
    proc = run("demo", "--json", "--dir", str(d), "--rows", "400")
    assert proc.returncode == 0, proc.stderr
    return d, json.loads(proc.stdout)


def test_demo_json_report(demo_dir: tuple[Path, dict]) -> None:
    _, r = demo_dir
    assert r["rows"] == 400 and r["vectors"] == 400 and r["dim"] == 384
    assert r["keys"] == 400 + 400 + 100  # texts, traces, session memories
    assert r["verify_ok"] is True
    assert r["recall_at_10"] >= 0.99
    assert r["dedup_ratio"] > 1.0 and r["unique_blobs"] < r["keys"]
    assert r["bytes"]["ram"] < r["bytes"]["plain_dict_ram"]
    assert r["ram_reduction_vs_dict_percent"] >= 85
    assert sum(r["tiers"].values()) >= r["keys"]
    assert r["store_us"]["p50"] > 0 and r["retrieve_us"]["p99"] >= r["retrieve_us"]["p50"]
    agent = r["agent"]  # AgentMemory over the same texts: every text is a memory or merged into one
    assert agent["texts"] == 400 and agent["memories"] + agent["duplicates_merged"] == 400
    assert agent["add_p50_us"] > 0 and agent["search_p50_us"] > 0 and 0 < agent["disk_bytes_per_memory"] < 4000


def test_demo_table_from_the_bundled_sample() -> None:
    proc = run("demo", "--rows", "200")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for label in ("raw values", "plain dict in RAM", "memstrata in RAM", "memstrata on disk", "RAM reduction",
                  "dedup ratio", "tiers (keys)", "store p50 / p99", "retrieve p50 / p99", "recall@10", "verify()",
                  "agent memory"):
        assert label in out, label
    assert "bundled sample: 200 texts" in out and "ok: every frame checked" in out


def test_stats_reads_the_demo_store(demo_dir: tuple[Path, dict]) -> None:
    d, r = demo_dir
    proc = run("stats", str(d), "--json", "--verify")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["overall"]["keys"] == r["keys"]
    assert stats["verify"]["ok"] is True
    assert set(stats) >= {"middleware", "compression", "tiered_storage", "deduplication", "overall"}
    text = run("stats", str(d))
    assert text.returncode == 0 and f"keys               {r['keys']:,}" in text.stdout


def test_stats_while_another_process_writes(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", {"migration_interval_seconds": None}) as store:
        store.store("k", {"v": 1}, tier="warm")
        proc = run("stats", str(tmp_path / "s"), "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["overall"]["keys"] == 1


def test_errors_are_clear(tmp_path: Path) -> None:
    proc = run("stats", str(tmp_path))
    assert proc.returncode == 1 and "is not a memstrata store" in proc.stderr
    proc = run("demo", "--data", str(tmp_path))
    assert proc.returncode == 1 and "expected texts.jsonl and embeddings.npy" in proc.stderr
    proc = run("frobnicate")
    assert proc.returncode == 2 and "No such command" in proc.stderr


def test_demo_with_the_shared_data_set(shared_data: Path, tmp_path: Path) -> None:
    proc = run("demo", "--json", "--data", str(shared_data / "dev"), "--rows", "2000")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["rows"] == 2000 and r["recall_at_10"] >= 0.99 and r["verify_ok"]


def test_demo_says_where_its_store_is(tmp_path: Path) -> None:
    proc = run("demo", "--rows", "100", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "has been deleted; keep it with --dir DIR" in proc.stdout
    assert "hot keys are copies" in proc.stdout and "embeddings live in the vector index" in proc.stdout
    assert "the process itself" in proc.stdout
    kept = tmp_path / "kept"
    proc = run("demo", "--rows", "100", "--quiet", "--dir", str(kept))
    assert proc.returncode == 0, proc.stderr
    assert f"The store stays in {kept}" in proc.stdout and is_store(kept)
    assert run("stats", str(kept)).returncode == 0


def test_broken_pipe_exits_quietly(demo_dir: tuple[Path, dict]) -> None:
    d, _ = demo_dir
    exe = shutil.which("memstrata")
    cmd = f"{exe or sys.executable + ' -m memstrata.cli'} stats --json {d} | head -c1"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(["bash", "-c", cmd + "; echo \" ${PIPESTATUS[0]}\""], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.stdout.startswith("{") and proc.stdout.split()[-1] in ("0", "141"), proc.stdout
    assert proc.stderr == "", proc.stderr


def test_upgrade_and_repair_commands_run_the_engine(tmp_path: Path) -> None:
    golden = Path(__file__).resolve().parent / "golden" / "stores-v1"
    source = next(p for p in sorted(golden.iterdir()) if p.is_dir())
    store = tmp_path / "store"
    shutil.copytree(source, store)
    proc = run("upgrade", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    assert isinstance(json.loads(proc.stdout), dict)
    assert not (store / "store.sqlite").exists()
    proc = run("repair", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    assert isinstance(json.loads(proc.stdout), dict)
    proc = run("stats", str(store), "--json", "--verify")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verify"]["ok"]
    proc = run("repair", str(tmp_path / "nothing"))
    assert proc.returncode == 1 and "memstrata: error:" in proc.stderr
