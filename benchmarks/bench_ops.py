"""Operations: backups (full, incremental after 5 % changes, restore, verify) against restic, borg and
tar + zstd on one store, backups under a live writer, and prune plans over many memories.

Sizes are parameters so the CI smoke run stays small:

* ``MEMSTRATA_BENCH_OPS_MB`` (default 8): the store's size on disk; the goals are quoted at 300.
* ``MEMSTRATA_BENCH_OPS_RECORDS`` (default 10000): memories for the prune plan and apply; goals at 100000.
* ``MEMSTRATA_BENCH_OPS_LIVE`` (default 3): backups taken under a live writer per tool; goals at 20
  for memstrata and 5 for each peer.

Every peer runs in the same session on the same store; ratios are in ``extra_info``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from memstrata import MemoryStore
from memstrata.ops import (
    PruneConfig,
    PruneRecord,
    apply_plan,
    create_backup,
    plan_prune,
    records_from_store,
    restore_backup,
    save_plan,
    verify_backups,
)

SIZE_MB = int(os.environ.get("MEMSTRATA_BENCH_OPS_MB", "8"))
N_RECORDS = int(os.environ.get("MEMSTRATA_BENCH_OPS_RECORDS", "10000"))
N_LIVE = int(os.environ.get("MEMSTRATA_BENCH_OPS_LIVE", "3"))
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dev"
TOOLS = ["memstrata", "restic", "borg", "tar-zstd"]
TIMES: dict[str, dict[str, float]] = {}
BYTES: dict[str, dict[str, int]] = {}
ENV = {**os.environ, "RESTIC_PASSWORD": "bench", "BORG_PASSPHRASE": "", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
       "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}


def _need(tool: str) -> None:
    exe = {"restic": "restic", "borg": "borg", "tar-zstd": "zstd"}.get(tool)
    if exe and shutil.which(exe) is None:
        pytest.skip(f"{exe} not installed (Debian package; .ci/chromium.sh installs it)")


def _need_earlier(tool: str, step: str, what: str) -> None:
    """Skip unless ``tool`` is installed and its earlier ``step`` (``what``, in the reason) was timed."""
    _need(tool)
    if tool not in TIMES.get(step, {}):
        pytest.skip(f"{what} of this tool did not run")


def _sh(*cmd: str, cwd: Path | None = None, warnings_ok: bool = False) -> None:
    """Run a peer; ``warnings_ok`` accepts exit status 1 (borg's "file changed while we backed it up")."""
    proc = subprocess.run(cmd, capture_output=True, env=ENV, cwd=cwd)
    if proc.returncode not in ((0, 1) if warnings_ok else (0,)):
        raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout, proc.stderr)


def _dir_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


@pytest.fixture(scope="module")
def work() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    d = Path(tempfile.mkdtemp(prefix="memstrata-bench-ops-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _build(store: Path, mb: int) -> int:
    """Texts and (perturbed) embeddings from the shared data until the store holds ``mb`` MB on disk."""
    import json

    with open(DATA / "texts.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    emb = np.load(DATA / "embeddings.npy").astype(np.float32)
    rng = np.random.default_rng(0)
    n = 0
    with MemoryStore(store, {"migration_interval_seconds": None, "durability": "none"}) as s:
        while s.disk_bytes() < mb * 2**20:
            noise = rng.normal(scale=0.01, size=emb.shape).astype(np.float32)
            batch = {}
            for i in range(len(texts)):
                batch[f"text:{n}"] = {"agent": f"agent{n % 5}", "text": texts[i], "round": n // len(texts)}
                batch[f"emb:{n}"] = emb[i] + noise[i]
                n += 1
            s.store_many(batch, tier="warm")
            s.run_migrations()
        s.compact()
    return n


@pytest.fixture(scope="module")
def store(work: Path) -> Path:
    p = work / "store"
    _build(p, SIZE_MB)
    return p


class Peer:
    def __init__(self, name: str, work: Path) -> None:
        self.name, self.repo = name, work / f"repo-{name}"

    def full(self, store: Path) -> None:
        n = self.name
        if n == "memstrata":
            create_backup(store, self.repo, incremental=False)
        elif n == "restic":
            _sh("restic", "-r", str(self.repo), "init")
            _sh("restic", "-r", str(self.repo), "backup", "-q", str(store))
        elif n == "borg":
            _sh("borg", "init", "-e", "none", str(self.repo))
            _sh("borg", "create", f"{self.repo}::full", ".", cwd=store)
        else:
            self.repo.mkdir()
            _sh("tar", "--listed-incremental", str(self.repo / "snar"), "-I", "zstd -1 -T0", "-cf",
                str(self.repo / "full.tar.zst"), "-C", str(store), ".")

    def incremental(self, store: Path) -> None:
        n = self.name
        if n == "memstrata":
            create_backup(store, self.repo)
        elif n == "restic":
            _sh("restic", "-r", str(self.repo), "backup", "-q", str(store))
        elif n == "borg":
            _sh("borg", "create", f"{self.repo}::incr", ".", cwd=store)
        else:
            _sh("tar", "--listed-incremental", str(self.repo / "snar"), "-I", "zstd -1 -T0", "-cf",
                str(self.repo / "incr.tar.zst"), "-C", str(store), ".")

    def restore(self, target: Path) -> None:
        n = self.name
        if n == "memstrata":
            restore_backup(self.repo, target)
        elif n == "restic":
            _sh("restic", "-r", str(self.repo), "restore", "latest", "--target", str(target))
        elif n == "borg":
            target.mkdir()
            _sh("borg", "extract", f"{self.repo}::incr", cwd=target)
        else:
            target.mkdir()
            for part in ("full", "incr"):
                _sh("tar", "--listed-incremental", "/dev/null", "-I", "zstd -T0", "-xf", str(self.repo / f"{part}.tar.zst"),
                    "-C", str(target))

    def verify(self) -> None:
        n = self.name
        if n == "memstrata":
            assert verify_backups(self.repo)["ok"]
        elif n == "restic":
            _sh("restic", "-r", str(self.repo), "check", "--read-data")
        elif n == "borg":
            _sh("borg", "check", "--verify-data", str(self.repo))
        else:
            for part in ("full", "incr"):
                _sh("zstd", "-t", "-q", str(self.repo / f"{part}.tar.zst"))


def _timed(phase: str, tool: str, fn: Callable[[], None]) -> None:
    t0 = time.perf_counter()
    fn()
    TIMES.setdefault(phase, {})[tool] = time.perf_counter() - t0


def _ratios(benchmark: object, phase: str, tool: str) -> None:
    t = TIMES.get(phase, {})
    info = benchmark.extra_info  # type: ignore[attr-defined]
    info.update(store_mb=SIZE_MB, seconds=t.get(tool))
    if tool != "memstrata" and t.get("memstrata"):  # memstrata runs first in each group
        info["memstrata_speedup_vs_this"] = t[tool] / t["memstrata"]


@pytest.fixture(scope="module")
def peers(work: Path) -> dict[str, Peer]:
    return {t: Peer(t, work) for t in TOOLS}


@pytest.mark.parametrize("tool", TOOLS)
def test_backup_full(benchmark: object, tool: str, store: Path, peers: dict[str, Peer]) -> None:
    _need(tool)
    benchmark.group = f"backup-full-{SIZE_MB}MB"  # type: ignore[attr-defined]
    benchmark.pedantic(_timed, args=("full", tool, lambda: peers[tool].full(store)), rounds=1, iterations=1)  # type: ignore[attr-defined]
    BYTES.setdefault("full", {})[tool] = _dir_bytes(peers[tool].repo)
    _ratios(benchmark, "full", tool)


@pytest.fixture(scope="module")
def changed(store: Path) -> Path:
    """5 % of the keys get new values (the same change for every tool)."""
    rng = np.random.default_rng(5)
    with MemoryStore(store, {"migration_interval_seconds": None, "durability": "none"}) as s:
        keys = list(s.keys())
        pick = rng.choice(len(keys), size=len(keys) // 20, replace=False)
        s.store_many({keys[i]: {"changed": int(i), "text": f"rewritten memory {i}"} for i in pick}, tier="warm")
    return store


@pytest.mark.parametrize("tool", TOOLS)
def test_backup_incremental_after_5pc(benchmark: object, tool: str, changed: Path, peers: dict[str, Peer]) -> None:
    _need_earlier(tool, "full", "the full backup")
    benchmark.group = f"backup-incremental-5pc-{SIZE_MB}MB"  # type: ignore[attr-defined]
    before = _dir_bytes(peers[tool].repo)
    benchmark.pedantic(_timed, args=("incremental", tool, lambda: peers[tool].incremental(changed)), rounds=1,  # type: ignore[attr-defined]
                       iterations=1)
    added = BYTES.setdefault("added", {})
    added[tool] = _dir_bytes(peers[tool].repo) - before
    _ratios(benchmark, "incremental", tool)
    benchmark.extra_info["bytes_added"] = added[tool]  # type: ignore[attr-defined]
    if tool != "memstrata" and "memstrata" in added and added[tool]:
        benchmark.extra_info["memstrata_bytes_vs_this"] = added["memstrata"] / added[tool]  # type: ignore[attr-defined]


@pytest.mark.parametrize("tool", TOOLS)
def test_restore(benchmark: object, tool: str, work: Path, peers: dict[str, Peer]) -> None:
    _need_earlier(tool, "incremental", "the incremental backup")
    benchmark.group = f"restore-{SIZE_MB}MB"  # type: ignore[attr-defined]
    target = work / f"restored-{tool}"
    benchmark.pedantic(_timed, args=("restore", tool, lambda: peers[tool].restore(target)), rounds=1, iterations=1)  # type: ignore[attr-defined]
    _ratios(benchmark, "restore", tool)
    shutil.rmtree(target, ignore_errors=True)


@pytest.mark.parametrize("tool", TOOLS)
def test_verify(benchmark: object, tool: str, peers: dict[str, Peer]) -> None:
    _need_earlier(tool, "incremental", "the backups")
    benchmark.group = f"verify-read-data-{SIZE_MB}MB"  # type: ignore[attr-defined]
    benchmark.pedantic(_timed, args=("verify", tool, peers[tool].verify), rounds=1, iterations=1)  # type: ignore[attr-defined]
    _ratios(benchmark, "verify", tool)


WRITER = """
import sys
from memstrata import MemoryStore
s = MemoryStore(sys.argv[1], {"migration_interval_seconds": 0.01, "hot_idle_seconds": 0.0, "warm_idle_seconds": 0.02})
i = 0
while True:
    s.store(f"k{i}", {"i": i, "text": "live " * (i % 50)}, tier=("hot", "warm", "cold")[i % 3])
    if i % 7 == 6:
        s.delete(f"k{i - 3}")
    if i % 500 == 499:
        s.compact()
    i += 1
"""


def _consistent(target: Path) -> bool:
    """The restored store opens (restic restores under the original absolute path) and every frame verifies."""
    from memstrata.store import is_store

    if not is_store(target):
        found = [p.parent.parent for p in target.rglob("CHECKPOINT") if p.parent.name == "log"]
        if not found:
            return False
        target = found[0]
    try:
        with MemoryStore(target, read_only=True) as s:
            return bool(s.verify()["ok"])
    except Exception:
        return False


@pytest.mark.parametrize("tool", ["memstrata", "restic", "borg"])
def test_backups_under_a_live_writer(benchmark: object, tool: str, work: Path) -> None:
    _need(tool)
    benchmark.group = "backup-under-live-writer"  # type: ignore[attr-defined]
    live = work / f"live-{tool}"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(live)], env={**ENV, "PYTHONPATH": os.pathsep.join(sys.path)})
    peer = Peer(tool, work)
    peer.repo = work / f"live-repo-{tool}"
    n = N_LIVE * (4 if tool == "memstrata" else 1) if N_LIVE >= 5 else N_LIVE
    bad = 0
    try:
        deadline = time.monotonic() + 60
        while not (live / "log" / "CHECKPOINT").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        if tool == "restic":
            _sh("restic", "-r", str(peer.repo), "init")
        if tool == "borg":
            _sh("borg", "init", "-e", "none", str(peer.repo))

        def run() -> None:
            nonlocal bad
            for i in range(n):
                if tool == "memstrata":
                    create_backup(live, peer.repo)
                elif tool == "restic":
                    _sh("restic", "-r", str(peer.repo), "backup", "-q", str(live), warnings_ok=True)
                else:
                    _sh("borg", "create", f"{peer.repo}::b{i}", ".", cwd=live, warnings_ok=True)
                time.sleep(0.2)

        benchmark.pedantic(run, rounds=1, iterations=1)  # type: ignore[attr-defined]
    finally:
        proc.kill()
        proc.wait()
    if tool == "memstrata":
        from memstrata.ops import list_backups

        ids = [m["id"] for m in list_backups(peer.repo)]
        for i, sid in enumerate(ids):
            target = work / f"live-restore-{tool}-{i}"
            restore_backup(peer.repo, target, snapshot=sid)
            bad += not _consistent(target)
    elif tool == "restic":
        out = subprocess.run(["restic", "-r", str(peer.repo), "snapshots", "--json"], capture_output=True, env=ENV,
                             check=True, text=True).stdout
        import json

        for i, snap in enumerate(json.loads(out)):
            target = work / f"live-restore-{tool}-{i}"
            _sh("restic", "-r", str(peer.repo), "restore", snap["short_id"], "--target", str(target))
            bad += not _consistent(target)
    else:
        for i in range(n):
            target = work / f"live-restore-{tool}-{i}"
            target.mkdir()
            _sh("borg", "extract", f"{peer.repo}::b{i}", cwd=target)
            bad += not _consistent(target)
    benchmark.extra_info.update(backups=n, inconsistent_restores=bad)  # type: ignore[attr-defined]
    if tool == "memstrata":
        assert bad == 0


def _records(n: int) -> list[PruneRecord]:
    rng = np.random.default_rng(3)
    now = 1_800_000_000.0
    last = now - rng.random(n) * 200 * 86400
    return [PruneRecord(key=f"m{i}", kind=("memory", "pattern", "decision")[i % 3], agent=f"agent{i % 7}",
                        last_used=float(last[i]), success_rate=float(rng.random()), executions=int(i % 20),
                        confidence=float(rng.random()), size=int(100 + i % 4000)) for i in range(n)]


@pytest.mark.parametrize("impl", ["memstrata"])
def test_prune_plan(benchmark: object, impl: str) -> None:
    recs = _records(N_RECORDS)
    benchmark.group = f"prune-plan-{N_RECORDS}"  # type: ignore[attr-defined]
    plan = benchmark(plan_prune, recs, PruneConfig(agent_max_bytes=20 * 2**20), now=1_800_000_000.0)  # type: ignore[attr-defined]
    benchmark.extra_info.update(records=N_RECORDS, planned=len(plan["items"]))  # type: ignore[attr-defined]


def test_prune_plan_and_apply_on_a_store(benchmark: object, work: Path) -> None:
    benchmark.group = f"prune-store-{N_RECORDS}"  # type: ignore[attr-defined]
    store = work / "prune-store"
    now = 1_800_000_000.0
    with MemoryStore(store, {"migration_interval_seconds": None, "durability": "none"}) as s:
        s.store_many(((f"m{i}", {"agent": f"agent{i % 7}", "kind": "memory", "last_used": now - (i % 200) * 86400,
                                 "confidence": (i % 100) / 100, "text": f"memory {i}"}) for i in range(N_RECORDS)),
                     tier="warm")
    times: dict[str, float] = {}

    def run() -> None:
        t0 = time.perf_counter()
        with MemoryStore(store, read_only=True) as s:
            records = records_from_store(s)
        times["read"] = time.perf_counter() - t0
        plan = plan_prune(records, now=now)
        times["plan"] = time.perf_counter() - t0 - times["read"]
        save_plan(store, plan)
        t1 = time.perf_counter()
        apply_plan(store, plan["id"], backup_repo=work / "prune-repo")
        times["apply_with_backup"] = time.perf_counter() - t1
        times["items"] = len(plan["items"])

    benchmark.pedantic(run, rounds=1, iterations=1)  # type: ignore[attr-defined]
    benchmark.extra_info.update(records=N_RECORDS, **times)  # type: ignore[attr-defined]
