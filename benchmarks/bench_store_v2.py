"""Storage engine v2 (the segment log) beside sqlite3, lmdb and diskcache on the dev records.

Goals (issue 9), same run, single thread, 30,000 dev records (10k texts with
metadata, 10k int8 embeddings, 10k trace records), hot tier 1 MiB:

* warm retrieve >= 2x sqlite3 SELECT + the same decode: group ``v2-warm-retrieve``;
* ``store()`` at "normal" >= 2x a sqlite3 autocommit insert: group ``v2-store-single`` (and, for new small
  records under new keys, ``v2-store-new``);
* files after ``compact()`` <= 1.10x the frames' bytes: group ``v2-bytes-after-compact``;
* RAM beyond the hot budget <= 32 bytes per key, open of 10^6 keys <= 1 s: group ``v2-open``.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from _store_peers import NO_THREAD, dir_bytes, json_text, sqlite_kv, time_writes

from memstrata import MemoryStore
from memstrata.cli._demo import make_traces

V2_HOT = 1 << 20
#: The code path the memstrata cases run (recorded in ``extra_info["path"]``).
LOG_PATH = "segment log (LogBackend), records encoded and read by memstrata._native.logrecords"


@pytest.fixture(scope="module")
def dev_records(shared_data: Path) -> dict[str, Any]:
    dev = shared_data / "dev"
    texts = [json.loads(line) for line in (dev / "texts.jsonl").read_text().splitlines()[:10_000]]
    emb = np.load(dev / "embeddings.npy")[:10_000]
    scale = np.abs(emb).max(axis=1, keepdims=True) / 127
    q = np.round(emb / scale).astype(np.int8)
    out: dict[str, Any] = {f"t{i}": {"id": t["id"], "source": t["source"], "text": t["text"], "importance": i % 5}
                           for i, t in enumerate(texts)}
    out.update({f"e{i}": q[i] for i in range(len(q))})
    out.update({f"r{i}": t for i, t in enumerate(make_traces(10_000))})
    return out


def _frame_of(v: Any) -> bytes:
    from memstrata import CompressionEngine

    return CompressionEngine({"zstd_level": 3, "train_after": 0}).compress(v)


@pytest.fixture(scope="module")
def v2_loaded(dev_records: dict[str, Any], tmp_path_factory) -> dict[str, Any]:
    """The same frames in memstrata (hot 1 MiB, compacted) and in sqlite3 / lmdb / diskcache."""
    from memstrata.codecs import decode

    root = tmp_path_factory.mktemp("v2")
    store = MemoryStore(root / "ms", {**NO_THREAD, "hot_max_bytes": V2_HOT})
    store.store_many(dev_records, tier="warm")
    store.compact()
    frames = {k: store.tiers.read_frame(k)[0] for k in dev_records}
    conn = sqlite_kv(root / "kv.sqlite", "BLOB")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO kv VALUES (?, ?)", frames.items())
    conn.execute("COMMIT")
    peers: dict[str, Any] = {"sqlite3": lambda k: decode(conn.execute("SELECT v FROM kv WHERE k=?", (k,)).fetchone()[0])}
    sizes = {"frames": sum(map(len, frames.values())), "memstrata": store.disk_bytes(),
             "sqlite3": dir_bytes(root) - dir_bytes(root / "ms")}
    try:
        lmdb = pytest.importorskip("lmdb")
        env = lmdb.open(str(root / "lmdb"), map_size=1 << 31)
        with env.begin(write=True) as txn:
            for k, f in frames.items():
                txn.put(k.encode(), f)
        peers["lmdb"] = lambda k: decode(env.begin().get(k.encode()))
        sizes["lmdb"] = dir_bytes(root / "lmdb")
    except pytest.skip.Exception:
        pass
    try:
        dc = pytest.importorskip("diskcache").Cache(str(root / "dc"))
        for k, f in frames.items():
            dc.set(k, f)
        peers["diskcache"] = lambda k: decode(dc.get(k))
        sizes["diskcache"] = dir_bytes(root / "dc")
    except pytest.skip.Exception:
        pass
    return {"store": store, "peers": peers, "sizes": sizes}


@pytest.mark.parametrize("engine", ["memstrata", "sqlite3", "lmdb", "diskcache"])
def test_v2_warm_retrieve(benchmark, engine: str, v2_loaded: dict[str, Any], dev_records: dict[str, Any]) -> None:
    benchmark.group = "v2-warm-retrieve"
    rng = random.Random(1)
    keys = [rng.choice(list(dev_records)) for _ in range(2000)]
    get = v2_loaded["store"].retrieve if engine == "memstrata" else v2_loaded["peers"].get(engine)
    if get is None:
        pytest.skip(f"peer {engine!r} not installed; pip install -e '.[bench]'")

    def run() -> None:
        for k in keys:
            get(k)

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["gets"] = len(keys)
    if engine == "memstrata":
        tiers = v2_loaded["store"].tiers.statistics()
        benchmark.extra_info["hot_items"] = tiers["hot"]["items"]
        benchmark.extra_info["path"] = LOG_PATH


@pytest.mark.parametrize("engine", ["memstrata-normal", "memstrata-full", "sqlite3-NORMAL", "sqlite3-FULL"])
def test_v2_store_single(benchmark, engine: str, dev_records: dict[str, Any], tmp_path_factory) -> None:
    benchmark.group = "v2-store-single"
    items = list(dev_records.items())[::60][:500]  # texts, vectors and traces alike
    path = tmp_path_factory.mktemp(engine)
    if engine.startswith("memstrata"):
        store = MemoryStore(path, {**NO_THREAD, "hot_max_bytes": V2_HOT, "durability": engine.split("-")[1]})

        def run() -> None:
            for k, v in items:
                store.store(k, v, tier="warm")
    else:
        conn = sqlite_kv(path / "kv.sqlite")
        conn.execute(f"PRAGMA synchronous={engine.split('-')[1]}")
        texts = [(k, json_text(v)) for k, v in items]

        def run() -> None:
            for k, v in texts:
                conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, v))

    time_writes(benchmark, run, len(items))
    if engine.startswith("memstrata"):
        benchmark.extra_info["path"] = LOG_PATH


@pytest.mark.parametrize("engine", ["memstrata-normal", "sqlite3-NORMAL"])
def test_v2_store_new(benchmark, engine: str, tmp_path_factory) -> None:
    """New small records under new keys (what an agent stores every turn): every round writes 2,000 new keys."""
    benchmark.group = "v2-store-new"
    n = 2000
    records = [{"text": f"memory {i}: the user said their favourite colour is {('red', 'teal', 'ochre')[i % 3]}",
                "meta": {"turn": i, "source": "chat"}} for i in range(4 * n)]
    path = tmp_path_factory.mktemp(engine)
    rounds = iter(range(4))
    if engine.startswith("memstrata"):
        store = MemoryStore(path, {**NO_THREAD, "hot_max_bytes": 0, "durability": "normal"})

        def run() -> None:
            r = next(rounds)
            for i in range(r * n, (r + 1) * n):
                store.store(f"m{i}", records[i], tier="warm")
    else:
        conn = sqlite_kv(path / "kv.sqlite")
        conn.execute("PRAGMA synchronous=NORMAL")
        texts = [json_text(v) for v in records]

        def run() -> None:
            r = next(rounds)
            for i in range(r * n, (r + 1) * n):
                conn.execute("INSERT INTO kv VALUES (?, ?)", (f"m{i}", texts[i]))

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["writes_per_round"] = n
    if benchmark.stats is not None:
        benchmark.extra_info["us_per_store"] = round(benchmark.stats.stats.median / n * 1e6, 1)
    if engine.startswith("memstrata"):
        benchmark.extra_info["path"] = LOG_PATH


@pytest.mark.parametrize("engine", ["memstrata-full", "sqlite3-FULL"])
def test_v2_store_full_threads(benchmark, engine: str, dev_records: dict[str, Any], tmp_path_factory) -> None:
    """Four threads writing at once, each write on stable storage before it returns (memstrata: group commit)."""
    import threading

    benchmark.group = "v2-store-full-4-threads"
    items = list(dev_records.items())[::60][:400]
    parts = [items[t::4] for t in range(4)]
    path = tmp_path_factory.mktemp(engine)
    if engine.startswith("memstrata"):
        store = MemoryStore(path, {**NO_THREAD, "hot_max_bytes": V2_HOT, "durability": "full"})

        def writer(part: list[tuple[str, Any]]) -> None:
            for k, v in part:
                store.store(k, v, tier="warm")
    else:
        sqlite_kv(path / "kv.sqlite").close()

        def writer(part: list[tuple[str, Any]]) -> None:
            conn = sqlite3.connect(path / "kv.sqlite", isolation_level=None, timeout=60)
            conn.execute("PRAGMA synchronous=FULL")
            for k, v in part:
                conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, json_text(v)))
            conn.close()

    def run() -> None:
        threads = [threading.Thread(target=writer, args=(part,)) for part in parts]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    time_writes(benchmark, run, len(items))


@pytest.mark.parametrize("engine", ["memstrata-store_many", "sqlite3-one-transaction"])
def test_v2_store_many(benchmark, engine: str, dev_records: dict[str, Any], tmp_path_factory) -> None:
    benchmark.group = "v2-store-many"
    items = list(dev_records.items())[::6][:5000]
    path = tmp_path_factory.mktemp(engine)
    if engine.startswith("memstrata"):
        store = MemoryStore(path, {**NO_THREAD, "hot_max_bytes": V2_HOT})

        def run() -> None:
            store.store_many(items, tier="warm")
    else:
        conn = sqlite_kv(path / "kv.sqlite")

        def run() -> None:
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", [(k, json_text(v)) for k, v in items])
            conn.execute("COMMIT")

    benchmark.pedantic(run, rounds=3, iterations=1)


def test_v2_bytes_after_compact(benchmark, v2_loaded: dict[str, Any], dev_records: dict[str, Any]) -> None:
    benchmark.group = "v2-bytes-after-compact"
    sizes = dict(v2_loaded["sizes"])
    raw = sum(v.nbytes * 4 if isinstance(v, np.ndarray) else len(msgspec.json.encode(v)) for v in dev_records.values())
    benchmark(lambda: v2_loaded["store"].disk_bytes())
    benchmark.extra_info.update({f"{k}_bytes": n for k, n in sizes.items()})
    benchmark.extra_info["raw_json_float32_bytes"] = raw
    benchmark.extra_info["memstrata_vs_frames"] = sizes["memstrata"] / sizes["frames"]
    for k, n in sizes.items():
        benchmark.extra_info[f"{k}_vs_raw"] = n / raw


#: The 10^6-key open case builds its store for minutes: run it with MEMSTRATA_BENCH_MILLION=1.
BENCH_MILLION = os.environ.get("MEMSTRATA_BENCH_MILLION", "") not in ("", "0")


_RSS_OF_OPEN = """
import os, sys
from memstrata import MemoryStore

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

MemoryStore(sys.argv[2], {"migration_interval_seconds": None}).close()  # warm the imports and allocator
before = rss()
store = MemoryStore(sys.argv[1], {"migration_interval_seconds": None, "hot_max_bytes": int(sys.argv[3])})
print(rss() - before)
store.close()
"""


def _rss_of_open(path: Path, scratch: Path) -> int | None:
    """Bytes the resident set of a fresh process grows by when it opens ``path`` (Linux ``/proc``), None elsewhere."""
    import subprocess
    import sys

    if not os.path.exists("/proc/self/statm"):
        return None
    out = subprocess.run([sys.executable, "-c", _RSS_OF_OPEN, str(path), str(scratch), str(V2_HOT)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.parametrize("n_keys", [100_000, 1_000_000])
def test_v2_open_and_ram_per_key(benchmark, n_keys: int, tmp_path) -> None:
    """Open time of a store of small keys; RAM per key beyond the hot budget (tracemalloc and RSS)."""
    import gc
    import time
    import tracemalloc

    if n_keys > 100_000 and not BENCH_MILLION:
        pytest.skip("the 10^6-key store takes minutes to build: set MEMSTRATA_BENCH_MILLION=1")
    benchmark.group = "v2-open"
    path = tmp_path / "big"
    with MemoryStore(path, {**NO_THREAD, "hot_max_bytes": V2_HOT}) as store:
        for i in range(0, n_keys, 10_000):
            store.store_many(((f"key:{j}", j) for j in range(i, i + 10_000)), tier="warm", batch=10_000)
    seconds: list[float] = []

    def open_store() -> None:
        t0 = time.perf_counter()
        store = MemoryStore(path, {**NO_THREAD, "hot_max_bytes": V2_HOT})
        seconds.append(time.perf_counter() - t0)
        store.close()

    benchmark.pedantic(open_store, rounds=2, iterations=1)
    benchmark.extra_info["open_seconds"] = min(seconds)
    rss = _rss_of_open(path, tmp_path / "scratch")
    if rss is not None:
        benchmark.extra_info["ram_bytes_per_key_rss"] = rss / n_keys  # a fresh process: no memory freed earlier to reuse
    store = MemoryStore(path, {**NO_THREAD, "hot_max_bytes": V2_HOT})
    benchmark.extra_info["index_bytes_per_key"] = store.tiers.backend.ram_bytes() / n_keys
    benchmark.extra_info["index_records_per_key"] = len(store.tiers.backend) / n_keys
    store.close()
    del store
    gc.collect()
    tracemalloc.start()  # tracing slows the open itself several times over: its time is reported apart
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    store = MemoryStore(path, {**NO_THREAD, "hot_max_bytes": V2_HOT})
    benchmark.extra_info["open_seconds_traced"] = time.perf_counter() - t0
    benchmark.extra_info["ram_bytes_per_key_tracemalloc"] = (tracemalloc.get_traced_memory()[0] - before) / n_keys
    tracemalloc.stop()
    benchmark.extra_info["ram_bytes_per_key_reported"] = store.get_statistics()["overall"]["ram_bytes"] / n_keys
    store.close()
