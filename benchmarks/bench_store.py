"""MemoryStore vs dict + pickle, sqlite3, diskcache and lmdb on small agent records.

Goals (issue 5), each read from one run:

* hot ``retrieve`` of a small record <= 2x (dict lookup + msgpack decode):
  group ``retrieve-hot-small``;
* warm ``retrieve`` >= 2x the random gets/s of plain sqlite3: group
  ``retrieve-warm-small``;
* bytes on disk <= 0.7x the raw values: group ``store-2k-records``,
  ``extra_info["disk_vs_raw"]`` for every engine;
* RAM >= 85 % below a plain dict of 10,000 dev texts + embeddings + 10,000
  traces, recall@10 >= 0.99: group ``ram-10k``, ``extra_info``.

Records are the bundled real sample (CPython docstring chunks) and agent trace
records, about a third of them repeated, as ``memstrata demo`` builds them.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from memstrata import MemoryStore
from memstrata.cli._demo import deep_sizeof, load_data, make_traces

N_GETS = 1000
NO_THREAD = {"migration_interval_seconds": None}


@pytest.fixture(scope="module")
def records() -> dict[str, Any]:
    texts, _emb, _ = load_data(None, None)
    out: dict[str, Any] = {f"text:{i}": {"id": t["id"], "source": t["source"], "text": t["text"]} for i, t in enumerate(texts)}
    out.update({f"trace:{i}": t for i, t in enumerate(make_traces(len(texts)))})
    return out


@pytest.fixture(scope="module")
def get_keys(records: dict[str, Any]) -> list[str]:
    rng = random.Random(0)
    keys = list(records)
    return [rng.choice(keys) for _ in range(N_GETS)]


def _sqlite_kv(db: Path, value_type: str = "TEXT") -> sqlite3.Connection:
    """The peer: a new SQLite key-value table ``kv`` (WAL) at ``db``; an autocommit connection."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"CREATE TABLE kv (k TEXT PRIMARY KEY, v {value_type})")
    return conn


def _json_text(value: Any) -> str:
    """The SQLite peer's value: JSON text (arrays as lists)."""
    return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value)


def _time_writes(benchmark: Any, run: Any, n_writes: int) -> None:
    """Three rounds of ``run``, recording how many writes a round makes."""
    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["writes"] = n_writes


def _raw_bytes(records: dict[str, Any]) -> int:
    return sum(len(msgspec.msgpack.encode(v)) for v in records.values())


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class _Engine:
    """One engine behind put_all / get / disk_bytes / close."""

    def __init__(self, name: str, path: Path, peer: Any) -> None:
        self.name, self.path = name, path
        if name.startswith("memstrata"):
            hot = 64 << 20 if name == "memstrata-hot" else 0
            self.batched = name == "memstrata-warm-batched"
            self.store = MemoryStore(path, {**NO_THREAD, "hot_max_bytes": hot, "train_after": 500})
            self.tier = "hot" if hot else "warm"
        elif name == "dict-pickle":
            self.d: dict[str, bytes] = {}
        elif name == "dict-msgpack":
            self.d = {}
            self.decode = msgspec.msgpack.Decoder().decode
        elif name == "sqlite3":
            path.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path / "plain.sqlite")
            self.conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
        elif name == "diskcache":
            self.cache = peer("diskcache").Cache(str(path))
        elif name == "lmdb":
            path.mkdir(parents=True, exist_ok=True)
            self.env = peer("lmdb").open(str(path), map_size=1 << 30)
        else:
            raise AssertionError(name)

    def put_all(self, records: dict[str, Any]) -> None:
        n = self.name
        if n.startswith("memstrata"):
            if self.batched:
                self.store.store_many(records, tier=self.tier)
                return
            for k, v in records.items():
                self.store.store(k, v, tier=self.tier)
        elif n == "dict-pickle":
            for k, v in records.items():
                self.d[k] = pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
        elif n == "dict-msgpack":
            for k, v in records.items():
                self.d[k] = msgspec.msgpack.encode(v)
        elif n == "sqlite3":
            for k, v in records.items():  # one transaction per write, like the others
                with self.conn:
                    self.conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, msgspec.msgpack.encode(v)))
        elif n == "diskcache":
            for k, v in records.items():
                self.cache.set(k, msgspec.msgpack.encode(v))
        elif n == "lmdb":
            for k, v in records.items():
                with self.env.begin(write=True) as txn:
                    txn.put(k.encode(), msgspec.msgpack.encode(v))

    def getter(self) -> Any:
        n = self.name
        if n.startswith("memstrata"):
            return self.store.retrieve
        if n == "dict-pickle":
            d, loads = self.d, pickle.loads
            return lambda k: loads(d[k])
        if n == "dict-msgpack":
            d, dec = self.d, self.decode
            return lambda k: dec(d[k])
        if n == "sqlite3":
            conn, dec = self.conn, msgspec.msgpack.decode
            return lambda k: dec(conn.execute("SELECT v FROM kv WHERE k=?", (k,)).fetchone()[0])
        if n == "diskcache":
            c, dec = self.cache, msgspec.msgpack.decode
            return lambda k: dec(c.get(k))
        if n == "lmdb":
            env, dec = self.env, msgspec.msgpack.decode

            def get(k: str) -> Any:
                with env.begin() as txn:
                    return dec(txn.get(k.encode()))

            return get
        raise AssertionError(n)

    def disk_bytes(self) -> int:
        n = self.name
        if n.startswith("memstrata"):
            self.store.compact()  # documented maintenance: garbage out, packs rewritten, SQLite vacuumed
            return self.store.disk_bytes()
        if n in ("dict-pickle", "dict-msgpack"):
            return len(pickle.dumps(self.d, protocol=pickle.HIGHEST_PROTOCOL))
        if n == "sqlite3":
            self.conn.commit()
            return _dir_bytes(self.path)
        if n == "diskcache":
            return _dir_bytes(self.path)
        if n == "lmdb":
            info, stat = self.env.info(), self.env.stat()
            return int((info["last_pgno"] + 1) * stat["psize"])
        raise AssertionError(n)

    def close(self) -> None:
        if self.name.startswith("memstrata"):
            self.store.close()
        elif self.name == "sqlite3":
            self.conn.close()
        elif self.name == "diskcache":
            self.cache.close()
        elif self.name == "lmdb":
            self.env.close()


@pytest.mark.parametrize(
    "engine", ["memstrata-hot", "memstrata-warm", "memstrata-warm-batched", "dict-pickle", "sqlite3", "diskcache", "lmdb"]
)
def test_store_records(benchmark, engine: str, records: dict[str, Any], tmp_path_factory, peer) -> None:
    benchmark.group = "store-2k-records"
    engines: list[_Engine] = []

    def setup() -> tuple[tuple[_Engine], dict[str, Any]]:
        e = _Engine(engine, tmp_path_factory.mktemp(engine), peer)
        engines.append(e)
        return (e,), {}

    benchmark.pedantic(lambda e: e.put_all(records), setup=setup, rounds=3, iterations=1)
    e = engines[-1]
    raw = _raw_bytes(records)
    disk = e.disk_bytes()
    benchmark.extra_info.update(raw_bytes=raw, disk_bytes=disk, disk_vs_raw=round(disk / raw, 3),
                                us_per_record=round(benchmark.stats.stats.median / len(records) * 1e6, 2)
                                if benchmark.stats else None)
    for x in engines:
        x.close()


@pytest.fixture(scope="module")
def loaded(records: dict[str, Any], tmp_path_factory, request) -> dict[str, _Engine]:
    import importlib

    def require_peer(module: str) -> Any:
        return importlib.import_module(module)  # ImportError: that engine's cases skip with the reason

    engines: dict[str, _Engine] = {}
    for name in ("memstrata-hot", "memstrata-warm", "dict-pickle", "dict-msgpack", "sqlite3", "diskcache", "lmdb"):
        try:
            e = _Engine(name, tmp_path_factory.mktemp(name), require_peer)
        except ImportError:
            continue
        e.put_all(records)
        engines[name] = e
    yield engines
    for e in engines.values():
        e.close()


def _run_gets(benchmark, loaded: dict[str, _Engine], engine: str, keys: list[str], records: dict[str, Any]) -> None:
    if engine not in loaded:
        pytest.skip(f"peer for {engine!r} not installed; pip install -e '.[bench]'")
    get = loaded[engine].getter()
    for k in keys[:50]:  # correctness, and warm-up
        assert get(k) == records[k]

    def run() -> None:
        for k in keys:
            get(k)

    benchmark(run)
    benchmark.extra_info["gets_per_call"] = len(keys)


@pytest.mark.parametrize("engine", ["memstrata-hot", "dict-msgpack", "dict-pickle"])
def test_retrieve_hot(benchmark, engine: str, loaded, get_keys, records) -> None:
    benchmark.group = "retrieve-hot-small"
    _run_gets(benchmark, loaded, engine, get_keys, records)
    if engine == "memstrata-hot":
        assert loaded[engine].store.get_statistics()["tiered_storage"]["hot"]["items"] == len(records)


@pytest.mark.parametrize("engine", ["memstrata-warm", "sqlite3", "diskcache", "lmdb"])
def test_retrieve_warm(benchmark, engine: str, loaded, get_keys, records) -> None:
    benchmark.group = "retrieve-warm-small"
    _run_gets(benchmark, loaded, engine, get_keys, records)


@pytest.mark.parametrize("engine", ["memstrata", "plain-dict"])
def test_ram_10k(benchmark, engine: str, shared_data: Path, tmp_path) -> None:
    """RAM held for 10,000 dev texts + embeddings + 10,000 traces; memstrata also reports recall@10."""
    from memstrata.cli._demo import run_demo

    benchmark.group = "ram-10k"
    if engine == "plain-dict":
        texts, emb, _ = load_data(shared_data / "dev", None)
        traces = make_traces(len(texts))

        def build() -> int:
            plain = {f"text:{i}": t["text"] for i, t in enumerate(texts)}
            plain.update({f"emb:{i}": emb[i].copy() for i in range(len(texts))})
            plain.update({f"trace:{i}": t for i, t in enumerate(traces)})
            return deep_sizeof(plain)

        ram = benchmark.pedantic(build, rounds=1, iterations=1)
        benchmark.extra_info.update(ram_bytes=ram)
        return
    report = benchmark.pedantic(
        lambda: run_demo(data=shared_data / "dev", directory=tmp_path / "demo", progress=False), rounds=1, iterations=1
    )
    benchmark.extra_info.update(
        ram_bytes=report["bytes"]["ram"],
        plain_dict_ram_bytes=report["bytes"]["plain_dict_ram"],
        ram_reduction_percent=round(report["ram_reduction_vs_dict_percent"], 2),
        recall_at_10=round(report["recall_at_10"], 4),
        disk_vs_raw=round(report["disk_vs_raw"], 3),
        records_reduction_percent=round(report["records"]["reduction_percent"], 2),
    )
    assert report["verify_ok"]


def test_crash_stress_script_exists() -> None:
    """The >= 1,000-run SIGKILL loop lives in ``benchmarks/crash_stress.py`` (run it directly)."""
    assert (Path(__file__).with_name("crash_stress.py")).is_file()
    assert os.access(Path(__file__).with_name("crash_stress.py"), os.R_OK)


# ------------------------------------------------------------------ format 2 --
# Goals (issue 9), same run, single thread, 30,000 dev records (10k texts with
# metadata, 10k int8 embeddings, 10k trace records), hot tier 1 MiB:
#   warm retrieve >= 2x sqlite3 SELECT + the same decode   (group v2-warm-retrieve)
#   store() at "normal" >= 2x a sqlite3 autocommit insert  (group v2-store-single)
#   files after compact() <= 1.10x the frames' bytes         (group v2-bytes-after-compact)
#   RAM beyond the hot budget <= 32 bytes per key            (group v2-ram-per-key)
#   open of 10^6 keys <= 1 s                                 (group v2-open)

V2_HOT = 1 << 20


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
    conn = _sqlite_kv(root / "kv.sqlite", "BLOB")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO kv VALUES (?, ?)", frames.items())
    conn.execute("COMMIT")
    peers: dict[str, Any] = {"sqlite3": lambda k: decode(conn.execute("SELECT v FROM kv WHERE k=?", (k,)).fetchone()[0])}
    sizes = {"frames": sum(map(len, frames.values())), "memstrata": store.disk_bytes(),
             "sqlite3": _dir_bytes(root) - _dir_bytes(root / "ms")}
    try:
        lmdb = pytest.importorskip("lmdb")
        env = lmdb.open(str(root / "lmdb"), map_size=1 << 31)
        with env.begin(write=True) as txn:
            for k, f in frames.items():
                txn.put(k.encode(), f)
        peers["lmdb"] = lambda k: decode(env.begin().get(k.encode()))
        sizes["lmdb"] = _dir_bytes(root / "lmdb")
    except pytest.skip.Exception:
        pass
    try:
        dc = pytest.importorskip("diskcache").Cache(str(root / "dc"))
        for k, f in frames.items():
            dc.set(k, f)
        peers["diskcache"] = lambda k: decode(dc.get(k))
        sizes["diskcache"] = _dir_bytes(root / "dc")
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
        conn = _sqlite_kv(path / "kv.sqlite")
        conn.execute(f"PRAGMA synchronous={engine.split('-')[1]}")
        texts = [(k, _json_text(v)) for k, v in items]

        def run() -> None:
            for k, v in texts:
                conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, v))

    _time_writes(benchmark, run, len(items))


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
        _sqlite_kv(path / "kv.sqlite").close()

        def writer(part: list[tuple[str, Any]]) -> None:
            conn = sqlite3.connect(path / "kv.sqlite", isolation_level=None, timeout=60)
            conn.execute("PRAGMA synchronous=FULL")
            for k, v in part:
                conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, _json_text(v)))
            conn.close()

    def run() -> None:
        threads = [threading.Thread(target=writer, args=(part,)) for part in parts]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    _time_writes(benchmark, run, len(items))


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
        conn = _sqlite_kv(path / "kv.sqlite")

        def run() -> None:
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", [(k, _json_text(v)) for k, v in items])
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
