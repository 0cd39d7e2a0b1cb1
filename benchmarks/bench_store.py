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

import os
import pickle
import random
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from _store_peers import NO_THREAD, dir_bytes, raw_bytes

from memstrata import MemoryStore
from memstrata.cli._demo import deep_sizeof, load_data, make_traces

N_GETS = 1000


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
            return dir_bytes(self.path)
        if n == "diskcache":
            return dir_bytes(self.path)
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
    raw = raw_bytes(records)
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
