"""SIGKILL a process writing a durable VectorMemory at random instants: every acknowledged write survives.

A forked child opens the memory, says so, and performs random add / delete / update /
upsert / compact / checkpoint operations, announcing each on a pipe before
it starts ("S") and after it returns ("A"). The parent kills it after a
random delay, reopens the directory (which must open and verify) and checks
the memory equals the model of acknowledged operations, or that model plus
the one operation in flight. ``MEMSTRATA_VECTOR_CRASH_RUNS`` sets the number
of kills (100 by default).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memstrata import VectorMemory

DIM = 8
RUNS = int(os.environ.get("MEMSTRATA_VECTOR_CRASH_RUNS", "100"))

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def vec(i: int, version: int) -> np.ndarray:
    return np.random.default_rng([i, version]).standard_normal(DIM).astype(np.float32)


def vecs(ids: list[int], version: int) -> np.ndarray:
    return np.stack([vec(i, version) for i in ids])


Model = dict[int, tuple[int, Any]]  # id -> (vector version, metadata)


def apply(model: Model, op: dict[str, Any]) -> Model:
    out = dict(model)
    kind, ids, v = op["op"], op.get("ids", []), op.get("v", 0)
    if kind in ("add", "upsert"):
        for i in ids:
            out[i] = (v, {"v": v, "i": i})
    elif kind == "delete":
        for i in ids:
            del out[i]
    elif kind == "meta":
        for i in ids:
            out[i] = (out[i][0], {"v": v})
    elif kind == "vectors":
        for i in ids:
            out[i] = (v, out[i][1])
    return out


def child(path: Path, fd: int, seed: int, durability: str) -> None:
    out = os.fdopen(fd, "w", buffering=1)
    rng = np.random.default_rng(seed)
    memory = VectorMemory.open(path, durability=durability)
    live = set(memory.ids().tolist())
    next_id = max(live, default=-1) + 1 + int(rng.integers(0, 3))
    version = seed * 1000
    out.write("R\n")
    while True:
        version += 1
        roll = rng.random()
        pick = sorted(live)
        chosen = [int(i) for i in rng.choice(pick, size=min(len(pick), int(rng.integers(1, 4))), replace=False)] if pick else []
        if roll < 0.4 or not chosen:
            ids = list(range(next_id, next_id + int(rng.integers(1, 6))))
            next_id = ids[-1] + 1
            op = {"op": "add", "ids": ids, "v": version}
        elif roll < 0.55:
            op = {"op": "delete", "ids": chosen}
        elif roll < 0.7:
            op = {"op": "meta", "ids": chosen, "v": version}
        elif roll < 0.8:
            op = {"op": "vectors", "ids": chosen, "v": version}
        elif roll < 0.9:
            op = {"op": "upsert", "ids": chosen + [next_id], "v": version}
            next_id += 1
        else:
            op = {"op": "compact" if roll < 0.95 else "checkpoint"}
        out.write("S " + json.dumps(op) + "\n")
        ids = op.get("ids", [])
        if op["op"] == "add":
            memory.add(vecs(ids, version), ids=ids, metadata=[{"v": version, "i": i} for i in ids])
        elif op["op"] == "upsert":
            memory.upsert(ids, vecs(ids, version), metadata=[{"v": version, "i": i} for i in ids])
        elif op["op"] == "delete":
            memory.delete(ids)
        elif op["op"] == "meta":
            memory.update(ids, metadata=[{"v": version}] * len(ids))
        elif op["op"] == "vectors":
            memory.update(ids, vectors=vecs(ids, version))
        elif op["op"] == "compact":
            memory.compact()
        else:
            memory.checkpoint()
        live = (live | set(ids)) - (set(ids) if op["op"] == "delete" else set())
        out.write("A\n")


def observed(memory: VectorMemory) -> dict[int, tuple[bytes, Any]]:
    ids = memory.ids().tolist()
    vectors = memory.get(ids) if ids else np.empty((0, DIM), np.float32)
    return {i: (vectors[n].tobytes(), memory.metadata(i)) for n, i in enumerate(ids)}


def expected(model: Model) -> dict[int, tuple[bytes, Any]]:
    return {i: (vec(i, v).tobytes(), meta) for i, (v, meta) in model.items()}


@pytest.mark.slow
def test_sigkill_at_random_instants_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "vm"
    VectorMemory.open(path, DIM, codec="float32", metric="ip", rescore=2).close()
    model: Model = {}
    rng = np.random.default_rng(20261129)
    in_flight_seen = 0
    for run in range(RUNS):
        durability = ("normal", "none", "full")[run % 3]
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child is killed
            try:
                os.close(r)
                child(path, w, run + 1, durability)
            except BaseException:
                import traceback

                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        os.close(w)
        with os.fdopen(r) as pipe:
            assert pipe.readline() == "R\n", f"run {run}: the writer did not open the memory"
            time.sleep(float(rng.uniform(0.0, 0.06)))
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status), f"run {run}: the writer failed before it was killed (status {status})"
            lines = pipe.read().splitlines()
        pending = None
        for line in lines:
            if line.startswith("S "):
                try:
                    pending = json.loads(line[2:])
                except ValueError:  # a torn line: killed while announcing, the op never started
                    pending = None
            elif line == "A":
                assert pending is not None
                model = apply(model, pending)
                pending = None
        with VectorMemory.open(path, read_only=bool(run % 2)) as memory:
            got = observed(memory)
        if pending is not None and got != expected(model):
            in_flight_seen += 1
            model = apply(model, pending)  # the write in flight was made durable before the kill
        assert got == expected(model), f"run {run}: state differs from the acknowledged writes"
    with VectorMemory.open(path) as memory:  # a last writer open drops any torn tail and still agrees
        assert observed(memory) == expected(model)
    print(f"{RUNS} kills, {len(model)} ids, {in_flight_seen} in-flight writes found durable", file=sys.stderr)
