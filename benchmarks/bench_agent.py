"""AgentMemory beside the agent-memory stores users reach for, on the dev set's real embeddings.

Same run, one thread, precomputed vectors (no model time): ``add`` one at a
time (memstrata with its exact- and near-duplicate checks on), ``add_many``,
and ``search`` (latency p50/p99 and tie-aware recall@10 against
``neighbours.npy``), bytes on disk and RSS growth per memory, at 10^4 dev
memories; and memstrata at 10^5 (the dev set tiled ten times with small
noise) for the scaling curve. Peers: ChromaDB (PersistentClient), Qdrant
(local mode), LanceDB and Mem0 (``infer=False``, embedder replaced by a lookup
of the precomputed vectors), each skipped with the reason when it is not
installed (``pip install -e '.[bench-agent]'``).

Figures land in ``benchmark.extra_info`` and, for the ratios, in the summary
case ``test_same_run_ratios`` (which runs last and reads what the others measured).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _numba_threads import numba_threads

from memstrata._heap import release_free_heap
from memstrata.agent import AgentConfig, AgentMemory

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dev"
K = 10
N_SINGLE = 500  # single adds timed, into a memory already holding the other 9,000
N_QUERIES = 200
# copies of the dev set in the scaling case: 10 gives 10^5 memories; CI's smoke run sets fewer
SCALE_TILES = int(os.environ.get("MEMSTRATA_BENCH_AGENT_TILES", "10"))
RESULTS: dict[str, dict[str, Any]] = {}
#: the vector row placement memstrata does not use by default, measured beside it in the same run
OTHER_ROWS = "ram" if AgentConfig().vector_rows == "file" else "file"
PEERS = ("memstrata", f"memstrata_rows_{OTHER_ROWS}", "chromadb", "qdrant", "lancedb", "mem0")


def _need_data() -> None:
    if not (DATA / "embeddings.npy").exists():
        pytest.skip(f"dev embeddings not found at {DATA}")


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    with numba_threads(1):
        yield


@cache
def dev() -> tuple[list[str], np.ndarray, np.ndarray]:
    _need_data()
    texts = [json.loads(line)["text"] for line in (DATA / "texts.jsonl").read_text(encoding="utf-8").splitlines()]
    return texts, np.load(DATA / "embeddings.npy"), np.load(DATA / "neighbour_sims.npy")


def recall_at_10(found: list[list[int]]) -> float:
    """Tie-aware recall@10 of queries 0..n-1 (self excluded): a hit is any result at least as similar as the 10th."""
    _, x, sims = dev()
    hits = 0
    for a, ids in enumerate(found):
        got = [i for i in ids if i != a and i >= 0][:K]
        hits += int(((x[got] @ x[a]) >= sims[a, K - 1] - 1e-6).sum())
    return hits / (len(found) * K)


@cache
def _distinct() -> tuple[list[str], np.ndarray]:
    """Each row's normalized text (case and runs of whitespace ignored, as AgentMemory merges) and the first rows."""
    texts, _, _ = dev()
    norms = [" ".join(t.lower().split()) for t in texts]
    first: dict[str, int] = {}
    for i, t in enumerate(norms):
        first.setdefault(t, i)
    return norms, np.array(sorted(first.values()))


def recall_at_10_distinct(found: list[list[int]]) -> float:
    """Tie-aware recall@10 over distinct texts: the truth is the query's 10 nearest texts other than its own.

    An agent memory merges identical texts, so ``neighbours.npy`` (which counts
    every copy) caps its recall below 1; here every system's results are read
    as texts (copies of one text count once) and compared with the exact top 10
    of the distinct texts.
    """
    _, x, _ = dev()
    norms, firsts = _distinct()
    hits = 0
    for a, ids in enumerate(found):
        others = firsts[[norms[i] != norms[a] for i in firsts]]
        tenth = np.sort(x[others] @ x[a])[-K]
        seen: set[str] = {norms[a]}
        got = []
        for i in ids:
            if i >= 0 and norms[i] not in seen:
                seen.add(norms[i])
                got.append(i)
        hits += int(((x[got[:K]] @ x[a]) >= tenth - 1e-6).sum())
    return hits / (len(found) * K)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ----------------------------------------------------------------- adapters


class Adapter:
    """One store under test: ``add_one(i)``, ``add_many(rows)``, ``search(q) -> ids``, ``compact()``, ``close()``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def compact(self) -> None:
        pass

    def close(self) -> None:
        pass

    def paths(self) -> dict[str, Any]:
        """Which paths the writes took (for ``extra_info``); empty for peers."""
        return {}


class Memstrata(Adapter):
    def __init__(self, path: Path, vector_rows: str | None = None) -> None:
        super().__init__(path)
        texts, x, _ = dev()
        self.texts, self.x = texts, x
        rows = {} if vector_rows is None else {"vector_rows": vector_rows}
        cfg = AgentConfig(weight_relevance=0.0, weight_recency=0.0, **rows)  # rank by similarity alone, as the peers do
        self.m = AgentMemory(path, config=cfg)
        # memstrata id -> dataset row, for recall (the peers take the row as their id). An int32 array, not a dict:
        # the harness's own map must not count as memstrata's RAM (a dict of 10^4 ints is ~57 B a memory; this, 4 B)
        self.ids = np.full(len(texts), -1, np.int32)

    def _map(self, id_: int, i: int) -> None:
        if id_ >= self.ids.shape[0]:
            self.ids = np.concatenate([self.ids, np.full(max(id_ + 1, 2 * self.ids.shape[0]) - self.ids.shape[0], -1, np.int32)])
        if self.ids[id_] < 0:
            self.ids[id_] = i

    def add_one(self, i: int) -> None:
        self._map(self.m.add(self.texts[i], vector=self.x[i]).id, i)

    def add_many(self, rows: range) -> None:
        recs = self.m.add_many([self.texts[i] for i in rows], vectors=self.x[rows.start : rows.stop])
        for i, r in zip(rows, recs):
            self._map(r.id, i)

    def search(self, q: np.ndarray, k: int) -> list[int]:
        return [int(self.ids[h.id]) for h in self.m.search(q, limit=k, mode="vector")]

    def paths(self) -> dict[str, Any]:
        from memstrata.kernels.nearscreen import screen_path

        c = self.m.counters  # new memories, exact duplicates merged, near duplicates linked
        out: dict[str, Any] = {k: c[k] for k in ("added", "exact_duplicates", "near_links", "near_merged")}
        out["near_screen"] = screen_path()  # the compiled near-duplicate screen's target and popcount instruction
        return out

    def compact(self) -> None:
        self.m.compact()

    def close(self) -> None:
        self.m.close()


class Chroma(Adapter):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        chromadb = pytest.importorskip("chromadb", reason="chromadb not installed (pip install -e '.[bench-agent]')")
        self.texts, self.x, _ = dev()
        from chromadb.config import Settings

        self.client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
        self.col = self.client.create_collection("dev", metadata={"hnsw:space": "cosine"})

    def add_one(self, i: int) -> None:
        self.col.add(ids=[str(i)], embeddings=[self.x[i].tolist()], documents=[self.texts[i]])

    def add_many(self, rows: range) -> None:
        step = self.client.get_max_batch_size()  # one add call takes at most this many rows
        for start in range(rows.start, rows.stop, step):
            part = range(start, min(start + step, rows.stop))
            self.col.add(ids=[str(i) for i in part], embeddings=self.x[part.start : part.stop].tolist(),
                         documents=[self.texts[i] for i in part])

    def search(self, q: np.ndarray, k: int) -> list[int]:
        return [int(i) for i in self.col.query(query_embeddings=[q.tolist()], n_results=k)["ids"][0]]


class Qdrant(Adapter):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        qc = pytest.importorskip("qdrant_client", reason="qdrant-client not installed (pip install -e '.[bench-agent]')")
        from qdrant_client.models import Distance, PointStruct, VectorParams

        self.Point = PointStruct
        self.texts, self.x, _ = dev()
        self.client = qc.QdrantClient(path=str(path))
        self.client.create_collection("dev", vectors_config=VectorParams(size=self.x.shape[1], distance=Distance.COSINE))

    def add_one(self, i: int) -> None:
        self.client.upsert("dev", [self.Point(id=i, vector=self.x[i].tolist(), payload={"text": self.texts[i]})])

    def add_many(self, rows: range) -> None:
        self.client.upsert("dev", [self.Point(id=i, vector=self.x[i].tolist(), payload={"text": self.texts[i]}) for i in rows])

    def search(self, q: np.ndarray, k: int) -> list[int]:
        return [int(p.id) for p in self.client.query_points("dev", query=q.tolist(), limit=k).points]

    def close(self) -> None:
        self.client.close()


class Lance(Adapter):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.lancedb = pytest.importorskip("lancedb", reason="lancedb not installed (pip install -e '.[bench-agent]')")
        self.texts, self.x, _ = dev()
        self.db = self.lancedb.connect(str(path))
        self.table = None

    def _rows(self, rows: Any) -> list[dict[str, Any]]:
        return [{"id": i, "text": self.texts[i], "vector": self.x[i]} for i in rows]

    def add_one(self, i: int) -> None:
        self.add_many(range(i, i + 1))

    def add_many(self, rows: range) -> None:
        if self.table is None:
            self.table = self.db.create_table("dev", data=self._rows(rows))
        else:
            self.table.add(self._rows(rows))

    def search(self, q: np.ndarray, k: int) -> list[int]:
        assert self.table is not None
        res = self.table.search(q).metric("cosine").limit(k).to_list()
        return [int(r["id"]) for r in res]

    def compact(self) -> None:
        if self.table is not None:
            from datetime import timedelta

            try:  # compaction, and old versions removed at once (needs pylance, in the bench-agent extra)
                with warnings.catch_warnings():  # the warning says no other process may use the table: none does
                    warnings.simplefilter("ignore", UserWarning)
                    self.table.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)
            except ImportError as exc:
                pytest.skip(f"lancedb compaction needs pylance ({exc})")


class Mem0(Adapter):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        os.environ.setdefault("MEM0_TELEMETRY", "False")  # no network calls from the peer
        pytest.importorskip("mem0", reason="mem0ai not installed (pip install -e '.[bench-agent]')")
        from mem0 import Memory

        self.texts, self.x, _ = dev()
        lookup = {t: i for i, t in enumerate(self.texts)}
        x = self.x
        os.environ.setdefault("OPENAI_API_KEY", "unused-no-llm-is-called")
        cfg = {"vector_store": {"provider": "qdrant", "config": {"path": str(path / "qdrant"), "embedding_model_dims": 384,
                                                                  "on_disk": True}},
               "history_db_path": str(path / "history.db")}
        try:
            self.m = Memory.from_config(cfg)
        except Exception as exc:
            pytest.skip(f"mem0 could not start without network/LLM: {exc!r}"[:300])

        class Lookup:
            def embed(self, text: str, memory_action: str | None = None) -> list[float]:
                return x[lookup[text]].tolist()

        self.m.embedding_model = Lookup()
        self.ids: dict[str, int] = {}

    def add_one(self, i: int) -> None:
        out = self.m.add(self.texts[i], user_id="bench", infer=False)
        for r in out.get("results", []):
            self.ids[r["id"]] = i

    def add_many(self, rows: range) -> None:
        for i in rows:
            self.add_one(i)

    def search(self, q: np.ndarray, k: int) -> list[int]:
        raise pytest.skip.Exception("mem0 searches by text through its embedder; measured with a text lookup below")


ADAPTERS: dict[str, Callable[[Path], Adapter]] = {
    "memstrata": Memstrata, f"memstrata_rows_{OTHER_ROWS}": partial(Memstrata, vector_rows=OTHER_ROWS),
    "chromadb": Chroma, "qdrant": Qdrant, "lancedb": Lance, "mem0": Mem0,
}


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="memstrata-bench-agent-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _pct(times: list[float]) -> tuple[float, float]:
    a = np.asarray(times)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def _time_adds(benchmark: Any, a: Adapter, rows: range, clock: Callable[[], float]) -> list[float]:
    """Time ``a.add_one`` for each of ``rows`` (by ``clock``), 50 to a benchmark round."""
    times: list[float] = []
    it = iter(rows)

    def one_batch() -> None:
        for _ in range(50):
            i = next(it)
            t0 = clock()
            a.add_one(i)
            times.append(clock() - t0)

    benchmark.pedantic(one_batch, rounds=len(rows) // 50, iterations=1)
    return times


# --------------------------------------------------------------------- cases


@pytest.mark.parametrize("impl", PEERS)
def test_add_single(benchmark, impl: str, workdir: Path) -> None:
    """Single adds (p50/p99) into a memory already holding 9,000 dev memories."""
    texts, x, _ = dev()
    n = len(texts)
    a = ADAPTERS[impl](workdir / impl)
    if impl == "mem0":
        start = n - 200  # mem0 adds take milliseconds each: time 200 of them into an empty memory
    else:
        start = n - N_SINGLE
        a.add_many(range(0, start))
    p50, p99 = _pct(_time_adds(benchmark, a, range(start, n), time.perf_counter))
    benchmark.extra_info.update(p50_us=round(p50 * 1e6, 1), p99_us=round(p99 * 1e6, 1), paths=a.paths())
    RESULTS.setdefault(impl, {}).update(add_p50=p50, add_p99=p99)
    print(f"\n{impl}: single add p50 {p50 * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us")
    a.close()


def test_add_single_agent_share(benchmark, workdir: Path) -> None:
    """memstrata's own part of a single add: the same adds with the store's writes replaced by a counter (CPU time).

    Not a goal by itself: it shows what the agent layer costs on top of
    ``MemoryStore.store`` and how many store writes one add makes.
    """
    texts, x, _ = dev()
    n = len(texts)
    a = Memstrata(workdir / "memstrata")
    start = n - N_SINGLE
    a.add_many(range(0, start))
    writes = [0]

    def counted(*args: Any, **kwargs: Any) -> None:
        writes[0] += 1

    a.m.store.store = counted  # type: ignore[method-assign]
    a.m.store.store_many = counted  # type: ignore[method-assign]
    p50, p99 = _pct(_time_adds(benchmark, a, range(start, n), time.process_time))
    info = dict(agent_cpu_p50_us=round(p50 * 1e6, 1), agent_cpu_p99_us=round(p99 * 1e6, 1),
                store_writes_per_add=round(writes[0] / N_SINGLE, 3), paths=a.paths())
    benchmark.extra_info.update(info)
    RESULTS.setdefault("memstrata", {}).update(agent_cpu_p50=p50)
    print(f"\nmemstrata without its store writes: {info}")
    a.close()


@pytest.mark.parametrize("impl", PEERS)
def test_add_many_search_disk_rss(benchmark, impl: str, workdir: Path) -> None:
    """add_many of all 10,000 (batches of 1,000); then search p50/p99 and recall@10; disk and RSS per memory."""
    texts, x, _ = dev()
    n = len(texts)
    gc.collect()
    # free heap left by earlier cases goes back to the OS first: otherwise a system could reuse it (and grow
    # less than it holds) or, trimming its own heap, give it back (and read a negative growth)
    release_free_heap()
    rss0 = rss_bytes()
    a = ADAPTERS[impl](workdir / impl)
    t0 = time.perf_counter()
    if impl == "mem0":
        pytest.skip("mem0 has no batch add; its single-add latency is measured in test_add_single")
    benchmark.pedantic(lambda: [a.add_many(range(s, min(s + 1000, n))) for s in range(0, n, 1000)], rounds=1, iterations=1)
    add_many_s = time.perf_counter() - t0
    gc.collect()
    rss = (rss_bytes() - rss0) / n
    found, times = [], []
    for qi in range(N_QUERIES):
        t = time.perf_counter()
        found.append(a.search(x[qi], K + 1))
        times.append(time.perf_counter() - t)
    p50, p99 = _pct(times)
    recall = recall_at_10(found)
    # untimed: 3k results, so a system that returns every copy of a text still shows 10 distinct texts
    recall_distinct = recall_at_10_distinct([a.search(x[qi], 3 * K) for qi in range(N_QUERIES)])
    a.compact()
    a.close()
    disk = dir_bytes(workdir / impl) / n
    info = dict(add_many_us_per_memory=round(add_many_s / n * 1e6, 2), search_p50_us=round(p50 * 1e6, 1),
                search_p99_us=round(p99 * 1e6, 1), recall_at_10=round(recall, 4),
                recall_at_10_distinct_texts=round(recall_distinct, 4), disk_bytes_per_memory=round(disk, 1),
                rss_bytes_per_memory=round(rss, 1), paths=a.paths())
    benchmark.extra_info.update(info)
    print(f"\n{impl}: {info}")
    RESULTS.setdefault(impl, {}).update(add_many=add_many_s / n, search_p50=p50, search_p99=p99, recall=recall,
                                        disk=disk, rss=rss)


@pytest.mark.parametrize("impl", ["memstrata", "chromadb"])
def test_scaling_100k(benchmark, impl: str, workdir: Path) -> None:
    """10^5 memories (the dev set tiled ten times, noise σ=0.01): add_many, search p50/p99, recall@10 of the originals."""
    texts, x, _ = dev()
    rng = np.random.default_rng(0)
    tiles = [x] + [x + rng.normal(0, 0.01, x.shape).astype(np.float32) for _ in range(SCALE_TILES - 1)]
    big = np.concatenate(tiles)
    big /= np.linalg.norm(big, axis=1, keepdims=True)
    big_texts = texts + [f"{t} [copy {c}]" for c in range(1, SCALE_TILES) for t in texts]
    a = ADAPTERS[impl](workdir / impl)
    a.texts, a.x = big_texts, big  # type: ignore[attr-defined]
    benchmark.pedantic(lambda: [a.add_many(range(s, s + 5000)) for s in range(0, big.shape[0], 5000)], rounds=1, iterations=1)
    times = []
    for qi in range(N_QUERIES):
        t = time.perf_counter()
        a.search(big[qi], K)
        times.append(time.perf_counter() - t)
    p50, p99 = _pct(times)
    a.close()
    benchmark.extra_info.update(n=big.shape[0], search_p50_us=round(p50 * 1e6, 1), search_p99_us=round(p99 * 1e6, 1),
                                disk_bytes_per_memory=round(dir_bytes(workdir / impl) / big.shape[0], 1))
    RESULTS.setdefault(impl, {}).update(search_p50_100k=p50)


def test_same_run_ratios(benchmark) -> None:
    """The goals, as ratios of this run's figures (skips what a missing peer did not measure)."""
    ours = RESULTS.get("memstrata")
    if not ours:
        pytest.skip("memstrata cases did not run")
    peers = {k: v for k, v in RESULTS.items() if not k.startswith("memstrata")}
    if not peers:
        pytest.skip("no peer is installed (pip install -e '.[bench-agent]'); figures are in the memstrata cases")
    info: dict[str, Any] = {}
    adds = {k: v["add_p50"] for k, v in peers.items() if "add_p50" in v}
    if adds:
        best = min(adds, key=adds.get)  # type: ignore[arg-type]
        info["add_speedup_vs_fastest_peer"] = (best, round(adds[best] / ours["add_p50"], 1))
        info["add_speedup_vs_each_peer"] = {k: round(v / ours["add_p50"], 1) for k, v in sorted(adds.items())}
    if "chromadb" in peers and "search_p50" in peers["chromadb"]:
        info["search_p50_vs_chroma"] = round(ours["search_p50"] / peers["chromadb"]["search_p50"], 3)
    if "chromadb" in peers and "search_p50_100k" in peers["chromadb"] and "search_p50_100k" in ours:
        info["search_p50_100k_vs_chroma"] = round(ours["search_p50_100k"] / peers["chromadb"]["search_p50_100k"], 3)
    if "lancedb" in peers and "disk" in peers["lancedb"]:
        info["disk_vs_lancedb"] = round(ours["disk"] / peers["lancedb"]["disk"], 3)
    rss = {k: v["rss"] for k, v in peers.items() if v.get("rss", 0) > 0}
    if rss:
        small = min(rss, key=rss.get)  # type: ignore[arg-type]
        info["rss_vs_smallest_peer"] = (small, round(ours["rss"] / rss[small], 3))
    benchmark.extra_info.update(info)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print("\n" + json.dumps({"ratios": info, "figures": RESULTS}, indent=1, default=str))
