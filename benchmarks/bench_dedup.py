"""DedupStore put/get per item vs a dict (and a dict of msgpack bytes), same data, same run.

Data: the 10,000 dev texts of ``../shared/data/dev/texts.jsonl`` (9,079 distinct,
so the store dedups naturally), each stored as ``{"source", "text"}`` under its
row id. Goal: a duplicate ``put`` (content already stored) costs ≤ 2 µs.
``extra_info`` holds ``us_per_item`` and, for the stores, the dedup statistics.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from memstrata import DedupStore, serialize

IMPLS = ["memstrata", "dict", "dict+msgpack"]


@pytest.fixture(scope="module")
def items(shared_data: Any) -> list[tuple[str, dict[str, str]]]:
    path = shared_data / "dev" / "texts.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with path.open() as f:
        rows = [json.loads(line) for line in f]
    return [(r["id"], {"source": r["source"], "text": r["text"]}) for r in rows]


def _putter(impl: str) -> tuple[Any, Any]:
    """``(store, put(key, value))`` for a fresh store of kind ``impl``."""
    if impl == "memstrata":
        store = DedupStore()
        return store, store.put
    d: dict[str, Any] = {}
    if impl == "dict":
        return d, d.__setitem__
    enc = msgspec.msgpack.encode
    return d, lambda k, v: d.__setitem__(k, enc(v))


def _per_item(benchmark: Any, n: int) -> None:
    if benchmark.stats:
        benchmark.extra_info["us_per_item"] = benchmark.stats.stats.median * 1e6 / n


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.benchmark(group="dedup-put-10k-texts")
def test_put_new(benchmark, impl, items) -> None:  # type: ignore[no-untyped-def]
    """10,000 puts into an empty store (921 of them duplicates of earlier rows)."""

    def setup():  # type: ignore[no-untyped-def]
        return (_putter(impl),), {}

    def run(sp):  # type: ignore[no-untyped-def]
        store, put = sp
        for k, v in items:
            put(k, v)
        return store

    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1, warmup_rounds=1)
    _per_item(benchmark, len(items))
    if impl == "memstrata":
        store = run(_putter(impl))
        s = store.get_statistics()
        benchmark.extra_info.update(unique_blobs=s["unique_blobs"], dedup_ratio=s["dedup_ratio"],
                                    stored_bytes=s["stored_bytes"], logical_bytes=s["logical_bytes"])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", ["same-key", "new-key"])
@pytest.mark.benchmark(group="dedup-put-duplicate-10k")
def test_put_duplicate(benchmark, impl, case, items) -> None:  # type: ignore[no-untyped-def]
    """Putting content that is already stored: again under its own key, or under a new key."""
    store, put = _putter(impl)
    for k, v in items:
        put(k, v)
    keys = [k if case == "same-key" else k + "-copy" for k, _ in items]
    values = [v for _, v in items]

    def run() -> None:
        for k, v in zip(keys, values):
            put(k, v)

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    _per_item(benchmark, len(items))
    if impl == "memstrata":
        assert store.get_statistics()["unique_blobs"] == len({serialize(v) for v in values})


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.benchmark(group="dedup-get-10k")
def test_get(benchmark, impl, items) -> None:  # type: ignore[no-untyped-def]
    store, put = _putter(impl)
    for k, v in items:
        put(k, v)
    keys = [k for k, _ in items]
    if impl == "memstrata":
        get = store.get
    elif impl == "dict":
        get = store.__getitem__
    else:
        dec = msgspec.msgpack.decode
        get = lambda k: dec(store[k])

    def run() -> int:
        return len([get(k) for k in keys])

    assert benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1) == len(keys)
    _per_item(benchmark, len(keys))


def test_put_and_get_interleaved(items) -> None:  # type: ignore[no-untyped-def]
    """Duplicate puts and gets per item, interleaved round by round with the dict peers.

    Printed for the record (no timing assertion); the goal is a duplicate put <= 2 µs.
    """
    from bench_codecs import interleaved  # benchmarks/ is on pytest's pythonpath

    store, put = _putter("memstrata")
    plain, plain_put = _putter("dict+msgpack")
    for k, v in items:
        put(k, v)
        plain_put(k, v)
    values = [v for _, v in items]
    same = [k for k, _ in items]
    new = [k + "-copy" for k, _ in items]
    dec = msgspec.msgpack.decode
    loops = {
        "memstrata-put-dup-same-key": lambda: [put(k, v) for k, v in zip(same, values)],
        "memstrata-put-dup-new-key": lambda: [put(k, v) for k, v in zip(new, values)],
        "dict+msgpack-put": lambda: [plain_put(k, v) for k, v in zip(same, values)],
        "memstrata-get": lambda: [store.get(k) for k in same],
        "dict+msgpack-get": lambda: [dec(plain[k]) for k in same],
    }
    for name, row in interleaved(loops, len(items), rounds=9).items():
        print(f"dedup {name:28s} " + " ".join(f"{k}={v:.3f}" for k, v in row.items()))
