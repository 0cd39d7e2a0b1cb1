"""``memstrata demo``: a realistic agent-memory workload, stored and measured."""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from memstrata.cli._demo_agent import agent_figures, agent_line

__all__ = ["deep_sizeof", "format_report", "human_bytes", "load_data", "run_demo"]

SAMPLE = Path(__file__).with_name("_sample")
TRACE_TYPES = ("symbolic_op", "perf_delta", "fitness_evo", "benchmark", "mutation", "collapse", "breakthrough", "meta_evo")
OPS = ("matmul", "softmax", "layernorm", "attention", "gelu", "conv2d", "embedding_lookup", "topk")


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``.

    >>> human_bytes(1536), human_bytes(3 * 2**20)
    ('1.5 KiB', '3.0 MiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def deep_sizeof(obj: Any, _seen: set[int] | None = None) -> int:
    """Bytes a Python object holds in RAM, following containers (numpy: data + header).

    >>> deep_sizeof([b"x" * 100]) > 100
    True
    """
    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, np.ndarray):
        return size if obj.base is None else size + obj.nbytes
    if isinstance(obj, dict):
        size += sum(deep_sizeof(k, seen) + deep_sizeof(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(deep_sizeof(v, seen) for v in obj)
    return size


class _Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = max(total, 1)
        self.done = 0
        self._last = -1.0
        self.label = ""

    def advance(self, n: int = 1, label: str | None = None) -> None:
        self.done += n
        if label is not None:
            self.label = label
        if not self.enabled:
            return
        frac = min(self.done / self.total, 1.0)
        if frac - self._last < 0.01 and frac < 1.0:
            return
        self._last = frac
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        sys.stderr.write(f"\r[{bar}] {frac * 100:5.1f}%  {self.label:<28}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def load_data(data: str | Path | None, rows: int | None) -> tuple[list[dict[str, Any]], np.ndarray, str]:
    """Texts and float32 embeddings from ``data`` (``texts.jsonl``, ``embeddings.npy``) or the bundled sample."""
    if data is None:
        with gzip.open(SAMPLE / "texts.jsonl.gz", "rt", encoding="utf-8") as f:
            texts = [json.loads(line) for line in f]
        with np.load(SAMPLE / "embeddings.npz") as z:
            emb = z["embeddings"].astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        source = "bundled sample"
    else:
        d = Path(data)
        if not (d / "texts.jsonl").exists() or not (d / "embeddings.npy").exists():
            raise FileNotFoundError(f"--data: expected texts.jsonl and embeddings.npy in {d}")
        with open(d / "texts.jsonl", encoding="utf-8") as f:
            texts = [json.loads(line) for line in f]
        emb = np.load(d / "embeddings.npy", mmap_mode="r")
        source = str(d)
    n = len(texts) if rows is None else min(int(rows), len(texts))
    if n < 20:
        raise ValueError(f"--rows: expected at least 20 rows, got {n}")
    return texts[:n], np.ascontiguousarray(emb[:n], dtype=np.float32), source


def make_traces(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Agent trace records; about a third repeat an earlier record exactly (agents repeat themselves)."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        if i > 10 and rng.random() < 0.33:
            out.append(dict(out[int(rng.integers(0, len(out)))]))
            continue
        kind = TRACE_TYPES[int(rng.integers(0, len(TRACE_TYPES)))]
        op = OPS[int(rng.integers(0, len(OPS)))]
        before = float(np.round(rng.uniform(0.5, 5.0), 4))
        after = float(np.round(before * rng.uniform(0.7, 1.1), 4))
        out.append({
            "trace_type": kind,
            "op": op,
            "generation": int(rng.integers(0, 200)),
            "metric": "latency_ms",
            "before": before,
            "after": after,
            "improvement_ratio": round(before / after, 4),
            "direction": "better" if after < before else "worse",
            "tags": ["agent", kind, op],
            "note": f"{kind} on {op}: {'kept' if after < before else 'reverted'} candidate",
        })
    return out


def _recall_at_10(memory: Any, emb: np.ndarray, data: str | None, n_queries: int) -> float:
    q = emb[:n_queries]
    exact_sims: np.ndarray | None = None
    if data is not None:
        p = Path(data) / "neighbour_sims.npy"
        if p.exists() and len(emb) == 10_000:
            exact_sims = np.load(p)[:n_queries]
    if exact_sims is None:  # exact top-10 by float64 dot products, the query itself excluded
        sims = q.astype(np.float64) @ emb.astype(np.float64).T
        sims[np.arange(n_queries), np.arange(n_queries)] = -np.inf
        exact_sims = -np.sort(-sims, axis=1)[:, :10]
    _, ids = memory.search(q, k=11)
    hits = 0
    for r in range(n_queries):
        got = [int(i) for i in ids[r] if i != r and i >= 0][:10]
        s = emb[got].astype(np.float64) @ q[r].astype(np.float64)
        hits += int(np.sum(s >= exact_sims[r, 9] - 1e-6))  # ties at rank 10 count as found
    return hits / (10 * n_queries)


def run_demo(
    data: str | Path | None = None,
    directory: str | Path | None = None,
    rows: int | None = None,
    preset: str = "aggressive",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the workload; returns the report (see :func:`format_report`)."""
    from memstrata import MemoryStore, StoreConfig, VectorMemory

    texts, emb, source = load_data(data, rows)
    n = len(texts)
    traces = make_traces(n)
    tmp = tempfile.TemporaryDirectory(prefix="memstrata-demo-") if directory is None else None
    root = Path(tmp.name if tmp is not None else directory)  # type: ignore[arg-type]
    root.mkdir(parents=True, exist_ok=True)
    if progress and tmp is not None:
        print(f"memstrata demo: store in the temporary directory {root} (deleted at the end; keep it with --dir DIR)",
              file=sys.stderr)
    bar = _Progress(progress and sys.stderr.isatty(), total=5 * n + 2 * min(n, 2000))
    try:
        # the plain-dict baseline: every raw value in RAM
        plain = {f"text:{i}": t["text"] for i, t in enumerate(texts)}
        plain.update({f"emb:{i}": emb[i].copy() for i in range(n)})
        plain.update({f"trace:{i}": t for i, t in enumerate(traces)})
        dict_ram = deep_sizeof(plain)
        del plain

        clock = [1_700_000_000.0]
        base = StoreConfig.preset(preset)
        hot_bytes = max(64 << 10, min(base.hot_max_bytes, 200 * n))
        cfg = StoreConfig.from_dict({**base.to_dict(), "migration_interval_seconds": None, "hot_max_bytes": hot_bytes,
                                     "train_after": min(base.train_after or 500, max(n // 4, 50))})
        store_dir = root  # exactly the directory given: `memstrata stats DIR` opens it
        store_times: list[float] = []
        step = 3 * 3600.0 / n
        with MemoryStore(store_dir, cfg, clock=lambda: clock[0]) as store:
            pc = time.perf_counter
            for i in range(n):
                t = texts[i]
                value = {"id": t.get("id", str(i)), "source": t.get("source", ""), "text": t["text"]}
                t0 = pc()
                store.store(f"text:{i}", value)
                store_times.append(pc() - t0)
                t0 = pc()
                store.store(f"trace:{i}", traces[i], tier="warm")
                store_times.append(pc() - t0)
                # the agent also remembers what it read: a repeated memory, stored again under a session key
                if i % 4 == 0:
                    t0 = pc()
                    store.store(f"session:{i // 4}", value)
                    store_times.append(pc() - t0)
                clock[0] += step  # the workload spans three hours of agent time
                if i % 500 == 499:
                    store.run_migrations()
                bar.advance(3, "storing texts and traces")
            # embeddings: binary codes in RAM, float originals on disk for exact re-ranking
            vec = VectorMemory(emb.shape[1], codec="binary", rescore=20, originals_path=root / "vectors.f32")
            vec.add(emb)
            bar.advance(n, "indexing embeddings")
            recall = _recall_at_10(vec, emb, None if data is None else str(data), min(n, 1000))
            bar.advance(n, "measuring recall@10")
            store.run_migrations()
            # retrieval: recent memories (hot) and random older ones (warm/cold)
            rng = np.random.default_rng(1)
            n_get = min(n, 2000)
            recent = [f"text:{i}" for i in range(max(0, n - 200), n)]
            keys = [recent[int(j)] for j in rng.integers(0, len(recent), n_get // 2)]
            keys += [f"{('text', 'trace')[int(j) % 2]}:{int(j) // 2}" for j in rng.integers(0, 2 * n, n_get - len(keys))]
            get_times: list[float] = []
            by_tier: dict[str, list[float]] = {"hot": [], "warm": [], "cold": []}
            for key in keys:
                tier = store.tier_of(key)
                t0 = pc()
                store.retrieve(key)
                dt = pc() - t0
                get_times.append(dt)
                by_tier[tier].append(dt)
            bar.advance(n_get, "retrieving")
            store.compact()  # routine maintenance: drop garbage, rewrite sparse packs, vacuum
            verify = store.verify()
            bar.advance(n_get, "verifying")
            stats = store.get_statistics()
            vec_file = root / "vectors.msvm"
            vec.save(vec_file)  # codes and float originals, one file
            vec_ram = vec.nbytes
            vec.close()
            (root / "vectors.f32").unlink(missing_ok=True)
        with MemoryStore(store_dir, cfg, read_only=True) as reopened:  # files as close() left them
            store_disk = reopened.disk_bytes()
            disk = store_disk + vec_file.stat().st_size
        bar.close()
        o, ts, dd = stats["overall"], stats["tiered_storage"], stats["deduplication"]
        raw = o["raw_bytes"] + emb.nbytes
        ram = ts["hot"]["bytes"] + vec_ram

        def q(values: list[float], p: float) -> float | None:
            return float(np.percentile(np.array(values) * 1e6, p)) if values else None

        report = {
            "data": source,
            "rows": n,
            "keys": o["keys"],
            "vectors": int(emb.shape[0]),
            "dim": int(emb.shape[1]),
            "preset": preset,
            "store_dir": None if tmp is not None else str(store_dir),
            "store_path": str(store_dir),
            "store_kept": tmp is None,
            "runtime_ram": _runtime_ram(),
            "bytes": {"raw": int(raw), "plain_dict_ram": int(dict_ram), "ram": int(ram), "disk": int(disk),
                      "hot_tier": int(ts["hot"]["bytes"]), "vector_codes": int(vec_ram)},
            "ram_reduction_vs_dict_percent": 100.0 * (1 - ram / dict_ram),
            "disk_vs_raw": disk / raw,
            "records": {"raw": o["raw_bytes"], "stored": o["stored_bytes"],
                        "reduction_percent": o["memory_reduction_percent"], "store_files": int(store_disk),
                        "store_files_vs_raw": store_disk / o["raw_bytes"]},
            "dedup_ratio": dd["dedup_ratio"],
            "unique_blobs": dd["unique_blobs"],
            "compression_ratio": stats["compression"]["ratio"],
            "tiers": {"hot": ts["hot"]["items"], "warm": ts["warm"]["items"], "cold": ts["cold"]["items"]},
            "moves": {"promotions": ts["promotions"], "demotions": ts["demotions"]},
            "store_us": {"p50": q(store_times, 50), "p99": q(store_times, 99)},
            "retrieve_us": {"p50": q(get_times, 50), "p99": q(get_times, 99),
                            **{f"{t}_p50": q(v, 50) for t, v in by_tier.items()}},
            "recall_at_10": recall,
            "vector_codec": "binary codes + float re-ranking (rescore=20) from disk",
            "verify_ok": verify["ok"],
            "agent": agent_figures(texts, emb),
        }
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()


def _runtime_ram() -> int | None:
    """Resident bytes of this process (the interpreter, numpy, numba and memstrata's own code and data)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def format_report(r: dict[str, Any]) -> str:
    """The table ``memstrata demo`` prints."""
    b = r["bytes"]

    def us(v: float | None) -> str:
        return "-" if v is None else f"{v:,.1f} µs"

    rt = r.get("runtime_ram")
    runtime = f"the process itself (interpreter, libraries) is {human_bytes(rt)} more" if rt else "runtime not included"
    rows = [
        ("data", f"{r['data']}: {r['rows']:,} texts + {r['vectors']:,} embeddings ({r['dim']}-d) + {r['rows']:,} traces"),
        ("keys stored", f"{r['keys']:,} keys: texts + traces + session memories (embeddings live in the vector index, "
                        f"not under keys); {r['unique_blobs']:,} unique values after dedup"),
        ("raw values", f"{human_bytes(b['raw'])}  (serialized records + float32 embeddings)"),
        ("plain dict in RAM", f"{human_bytes(b['plain_dict_ram'])}  (the same data as Python objects in one dict)"),
        ("memstrata in RAM", f"{human_bytes(b['ram'])}  (hot tier {human_bytes(b['hot_tier'])} + vector codes "
                             f"{human_bytes(b['vector_codes'])}; {runtime})"),
        ("RAM reduction", f"{r['ram_reduction_vs_dict_percent']:.1f}% vs the plain dict (data only, both sides)"),
        ("memstrata on disk", f"{human_bytes(b['disk'])}  ({r['disk_vs_raw']:.2f}x raw; store files + vector file)"),
        ("records", f"{human_bytes(r['records']['raw'])} raw -> {human_bytes(r['records']['stored'])} of frames ({r['records']['reduction_percent']:.1f}% smaller), "
                    f"{human_bytes(r['records']['store_files'])} of store files ({r['records']['store_files_vs_raw']:.2f}x raw)"),
        ("dedup ratio", f"{r['dedup_ratio']:.2f}x  (bytes of all values / bytes of the unique ones)"),
        ("tiers (keys)", f"hot {r['tiers']['hot']:,} | warm {r['tiers']['warm']:,} | cold {r['tiers']['cold']:,}  "
                         f"(hot keys are copies: each also has its durable copy on warm, so the sum exceeds the keys)"),
        ("store p50 / p99", f"{us(r['store_us']['p50'])} / {us(r['store_us']['p99'])}"),
        ("retrieve p50 / p99", f"{us(r['retrieve_us']['p50'])} / {us(r['retrieve_us']['p99'])}"),
        ("retrieve p50 by tier", f"hot {us(r['retrieve_us']['hot_p50'])} | warm {us(r['retrieve_us']['warm_p50'])} | cold {us(r['retrieve_us']['cold_p50'])}"),
        ("recall@10", f"{r['recall_at_10']:.4f}  ({r['vector_codec']})"),
        ("verify()", "ok: every frame checked" if r["verify_ok"] else "PROBLEMS FOUND"),
        *([("agent memory", agent_line(r["agent"]))] if r.get("agent") else []),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["memstrata demo", "=" * 14]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    if r.get("store_dir"):
        lines.append(f"\nThe store stays in {r['store_dir']}; inspect it with: memstrata stats {r['store_dir']}")
    else:
        lines.append(f"\nThe store was in {r.get('store_path')} and has been deleted; keep it with --dir DIR.")
    return "\n".join(lines)
