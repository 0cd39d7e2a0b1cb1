"""VectorMemory as an agent's memory: durable single writes, filtered search, bytes on disk, RSS.

Data: the 10,000 x 384 all-MiniLM-L6-v2 embeddings in ``../shared/data/dev``,
each with metadata ``{"bucket": i % 100, "kind": ...}``, so ``{"bucket": 7}``
selects 1 % of the rows and ``{"bucket": {"$lt": 50}}`` 50 %.

Groups (peers first, so memstrata's case records the same-run ratio):

* ``agent-add-durable``: one ``add`` of one vector + metadata that is on disk
  when it returns, into a memory of 10,000: memstrata's log (``normal`` and
  ``full``), memstrata ``save()`` after each add (the old way), and Chroma's
  ``collection.add`` on a ``PersistentClient``.
* ``agent-filter-{1,50}pct``: one query, k=10, int8: the dict filter, the
  same test as a Python lambda, and Chroma's ``where``.
* ``agent-disk``: bytes on disk per vector for each codec, with and without
  float originals, against codes + one copy of originals + metadata.
* ``agent-rss``: RSS growth of import + first add + first search on 10^4
  vectors, over an interpreter with numpy imported, measured in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memstrata import VectorMemory

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dev"
N = 10_000
_MEDIANS: dict[str, float] = {}


@pytest.fixture(scope="module")
def embeddings() -> np.ndarray:
    if not (DATA / "embeddings.npy").exists():
        pytest.skip(f"real embeddings not found at {DATA}")
    return np.load(DATA / "embeddings.npy")[:N].astype(np.float32)


def _meta(i: int) -> dict[str, Any]:
    return {"bucket": i % 100, "kind": ("note", "task", "fact")[i % 3]}


def _chroma(tmp: Path, x: np.ndarray) -> Any:
    chromadb = pytest.importorskip("chromadb", reason="peer 'chromadb' not installed; pip install -e '.[bench-agent]'")
    client = chromadb.PersistentClient(path=str(tmp / "chroma"))
    collection = client.create_collection("memories", embedding_function=None, metadata={"hnsw:space": "cosine"})
    for start in range(0, x.shape[0], 2000):
        stop = min(x.shape[0], start + 2000)
        collection.add(
            ids=[str(i) for i in range(start, stop)], embeddings=x[start:stop], metadatas=[_meta(i) for i in range(start, stop)]
        )
    return collection


def _record(benchmark: Any, group_key: str, name: str, peer: str | None = None) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return
    _MEDIANS[f"{group_key}/{name}"] = stats.stats.median
    if peer is not None and f"{group_key}/{peer}" in _MEDIANS:
        benchmark.extra_info[f"ratio_to_{peer}"] = stats.stats.median / _MEDIANS[f"{group_key}/{peer}"]


# ------------------------------------------------------------------ durable add

ADD_CASES = ["chroma", "memstrata-save-per-add", "memstrata-durable-full", "memstrata-durable-normal"]


@pytest.mark.parametrize("impl", ADD_CASES)
def test_add_one_durable(benchmark: Any, embeddings: np.ndarray, tmp_path: Path, impl: str) -> None:
    benchmark.group = "agent-add-durable"
    rng = np.random.default_rng(0)
    extra = embeddings[rng.integers(0, N, 2000)] + np.float32(0.01)
    counter = iter(range(N, N + 2000))
    added = [N]
    if impl == "chroma":
        collection = _chroma(tmp_path, embeddings)

        def add() -> None:
            i = next(counter)
            collection.add(ids=[str(i)], embeddings=extra[i - N : i - N + 1], metadatas=[_meta(i)])

    elif impl == "memstrata-save-per-add":
        memory = VectorMemory(384, "int8")
        memory.add(embeddings, metadata=[_meta(i) for i in range(N)])

        def add() -> None:
            i = next(counter)
            memory.add(extra[i - N : i - N + 1], ids=[i], metadata=[_meta(i)])
            memory.save(tmp_path / "snapshot.msvm")

    else:
        durability = impl.rsplit("-", 1)[1]
        memory = VectorMemory.open(tmp_path / "vm", 384, "int8", durability=durability)
        memory.add(embeddings, metadata=[_meta(i) for i in range(N)])
        memory.checkpoint()

        def add() -> None:
            i = next(counter)
            memory.add(extra[i - N : i - N + 1], ids=[i], metadata=[_meta(i)])
            added[0] = i + 1

    benchmark.pedantic(add, rounds=200 if impl != "memstrata-save-per-add" else 30, iterations=1, warmup_rounds=3)
    _record(benchmark, "add", impl, peer="chroma")
    if impl.startswith("memstrata-durable"):
        memory.close()
        with VectorMemory.open(tmp_path / "vm", read_only=True) as again:  # every acknowledged add is there
            assert len(again) == added[0]


# ------------------------------------------------------------------ filtered search

FILTERS = {
    "1pct": ({"bucket": 7}, lambda m: m is not None and m["bucket"] == 7),
    "50pct": ({"bucket": {"$lt": 50}}, lambda m: m is not None and m["bucket"] < 50),
}


@pytest.fixture(scope="module")
def int8_memory(embeddings: np.ndarray) -> Any:
    memory = VectorMemory(384, "int8")
    memory.add(embeddings, metadata=[_meta(i) for i in range(N)])
    memory.search(embeddings[:1], 10)
    yield memory
    memory.close()


@pytest.fixture(scope="module")
def chroma_collection(embeddings: np.ndarray, tmp_path_factory: Any) -> Any:
    return _chroma(tmp_path_factory.mktemp("chroma"), embeddings)


@pytest.mark.parametrize("selectivity", sorted(FILTERS))
@pytest.mark.parametrize("impl", ["chroma", "lambda", "memstrata"])
def test_filtered_search(benchmark: Any, embeddings: np.ndarray, int8_memory: Any, request: Any, impl: str, selectivity: str) -> None:
    benchmark.group = f"agent-filter-{selectivity}"
    where, func = FILTERS[selectivity]
    q = embeddings[123:124]
    if impl == "chroma":
        collection = request.getfixturevalue("chroma_collection")
        result = benchmark(lambda: collection.query(query_embeddings=q, n_results=10, where=where))
        got = [int(i) for i in result["ids"][0]]
    else:
        flt = where if impl == "memstrata" else func
        _, ids = benchmark(lambda: int8_memory.search(q, 10, filter=flt))
        got = ids[0].tolist()
    keep = [i for i in range(N) if func(_meta(i))]
    sims = embeddings[keep] @ q[0]
    exact = {keep[j] for j in np.argsort(-sims)[:10]}
    benchmark.extra_info["recall@10"] = len(exact & set(got)) / 10
    assert all(func(_meta(i)) for i in got)
    _record(benchmark, f"filter-{selectivity}", impl, peer="lambda")
    if impl == "memstrata" and f"filter-{selectivity}/chroma" in _MEDIANS and benchmark.stats is not None:
        benchmark.extra_info["ratio_to_chroma"] = benchmark.stats.stats.median / _MEDIANS[f"filter-{selectivity}/chroma"]


# ------------------------------------------------------------------ bytes on disk

CODEC_WIDTH = {"int8": 384, "int4": 192, "binary": 48, "float32": 1536}


@pytest.mark.parametrize("rescore", [None, 4], ids=["codes", "codes+originals"])
@pytest.mark.parametrize("codec", ["int8", "int4", "binary", "float32"])
def test_bytes_on_disk_per_vector(benchmark: Any, embeddings: np.ndarray, tmp_path: Path, codec: str, rescore: int | None) -> None:
    benchmark.group = "agent-disk"
    path = tmp_path / "vm"
    memory = VectorMemory.open(path, 384, codec, rescore=rescore)
    meta = [_meta(i) for i in range(N)]
    memory.add(embeddings[: N // 2], metadata=meta[: N // 2])
    memory.add(embeddings[N // 2 :], metadata=meta[N // 2 :])
    memory.delete(list(range(0, 200)))
    benchmark.pedantic(memory.compact, rounds=1, iterations=1)
    memory.close()
    n = N - 200
    on_disk = sum(p.stat().st_size for p in path.iterdir())
    metadata_bytes = sum(len(json.dumps([i, meta[i]], separators=(",", ":"))) + 1 for i in range(200, N))
    needed = n * (CODEC_WIDTH[codec] + 8 + (4 * 384 if rescore else 0)) + metadata_bytes
    benchmark.extra_info.update(
        bytes_per_vector=on_disk / n, needed_bytes_per_vector=needed / n, disk_ratio=on_disk / needed
    )
    assert on_disk <= 1.05 * needed + 64 * 1024, (on_disk, needed)


# ------------------------------------------------------------------ RSS

_RSS_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    x = np.load(sys.argv[1])[:10000].astype(np.float32)
    base = rss()
    from memstrata import VectorMemory
    memory = VectorMemory(384, sys.argv[2])
    memory.add(x)
    memory.search(x[:1], 10)
    print(base, rss())
    """
)


@pytest.mark.parametrize("codec", ["int8", "float32"])
def test_rss_import_add_search(benchmark: Any, embeddings: np.ndarray, codec: str) -> None:
    benchmark.group = "agent-rss"
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/status")
    out: list[str] = []

    def run() -> None:
        env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
        result = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(DATA / "embeddings.npy"), codec],
            capture_output=True, text=True, check=True, env=env,
        )
        out.append(result.stdout)

    benchmark.pedantic(run, rounds=1, iterations=1)
    base, after = (int(v) for v in out[-1].split()[:2])
    benchmark.extra_info.update(rss_growth_mb=(after - base) / 2**20, rss_base_mb=base / 2**20)
