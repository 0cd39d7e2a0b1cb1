"""One large value costs other keys nothing: warm reads of small records beside a 200 MB value.

Goal (issue 18, item 7): reading small records from a store that also holds
one large value takes at most 1.2x the time of the same reads from a store
without it. The store keeps only ``segment, offset`` per key in its index, so
a large value sits in the log next to the others and is never walked over.

Same run, same 2,000 small records and 2,000 random gets: memstrata with and
without the large value, and sqlite3 (a ``k TEXT PRIMARY KEY, v BLOB`` table)
with and without it, as the peer. ``MEMSTRATA_BENCH_LARGE_MB`` sets the size
(default 200; CI's smoke run uses less).
"""

from __future__ import annotations

import os
import random
import sqlite3
from typing import Any

import msgspec
import pytest

from memstrata import MemoryStore

LARGE_MB = int(os.environ.get("MEMSTRATA_BENCH_LARGE_MB", "200"))
N_RECORDS = 2000
N_GETS = 2000
CFG = {"migration_interval_seconds": None, "hot_max_bytes": 64 << 10}  # small hot tier: the reads are warm
RESULTS: dict[str, float] = {}


def _record(i: int) -> dict[str, Any]:
    return {"id": i, "text": f"observation {i}: the user asked about item {i * 7 % 13}", "score": i / 10}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("large")
    large = os.urandom(LARGE_MB << 20)  # incompressible, so it lands on disk at full size
    out: dict[str, Any] = {}
    for with_large in (False, True):
        name = "with" if with_large else "without"
        store = MemoryStore(root / f"store-{name}", CFG)
        store.store_many([(f"k{i}", _record(i)) for i in range(N_RECORDS // 2)], tier="warm")
        if with_large:
            store.store("large", large, tier="warm")
        store.store_many([(f"k{i}", _record(i)) for i in range(N_RECORDS // 2, N_RECORDS)], tier="warm")
        store.flush()
        out[f"memstrata-{name}"] = store
        db = sqlite3.connect(root / f"sqlite-{name}.db")
        db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
        rows = [(f"k{i}", msgspec.msgpack.encode(_record(i))) for i in range(N_RECORDS)]
        db.executemany("INSERT INTO kv VALUES (?, ?)", rows[: N_RECORDS // 2])
        if with_large:
            db.execute("INSERT INTO kv VALUES (?, ?)", ("large", large))
        db.executemany("INSERT INTO kv VALUES (?, ?)", rows[N_RECORDS // 2 :])
        db.commit()
        out[f"sqlite3-{name}"] = db
    yield out
    for engine in out.values():
        engine.close()


def _getter(engine: Any, name: str) -> Any:
    if name.startswith("memstrata"):
        return engine.retrieve
    decode = msgspec.msgpack.decode
    return lambda k: decode(engine.execute("SELECT v FROM kv WHERE k=?", (k,)).fetchone()[0])


@pytest.mark.parametrize("engine", ["memstrata-without", "memstrata-with", "sqlite3-without", "sqlite3-with"])
def test_reads_beside_a_large_value(benchmark: Any, engine: str, stores: dict[str, Any]) -> None:
    benchmark.group = "store-large-value"
    rng = random.Random(3)
    keys = [f"k{rng.randrange(N_RECORDS)}" for _ in range(N_GETS)]
    get = _getter(stores[engine], engine)
    assert get("k7") == _record(7)

    def run() -> None:
        for k in keys:
            get(k)

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(large_mb=LARGE_MB, gets=N_GETS)
    if benchmark.stats is None:  # --benchmark-disable: the case ran once, untimed
        return
    RESULTS[engine] = benchmark.stats.stats.median
    base = RESULTS.get(engine.replace("-with", "-without"))
    if engine.endswith("-with") and base:
        # the goal's figure: time with the large value over time without it, same engine, same run
        benchmark.extra_info["time_vs_without_large_value"] = round(RESULTS[engine] / base, 3)
