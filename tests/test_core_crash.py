"""SIGKILL at every step of MemoryCore's write fan-out: on reopen every layer agrees with the log.

Each run reuses the directory of the previous one, so replays land on top of
earlier replays. ``CI=true`` runs 100 randomized runs, otherwise 20
(``MEMSTRATA_CRASH_RUNS`` overrides).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from memstrata.codecs import deserialize
from memstrata.core import MemoryCore
from memstrata.core._layers import PATTERN, TOMBSTONE, decode_record
from memstrata.core._recovery import aborted_seq

WRITER = Path(__file__).resolve().parent / "_core_crash_writer.py"
STEPS = [
    "audit.before",
    "audit.inside",
    "audit.after",
    "durable.before",
    "durable.after",
    "cache.after",
    "vector.after",
    "trust.after",
    "events.after",
    "state.inside",
]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUNS = int(os.environ.get("MEMSTRATA_CRASH_RUNS", 100 if IN_CI else 20))


def assert_layers_agree_with_log(path: Path) -> int:
    with MemoryCore(path, checkpoint_every=7) as core:
        n = core.audit.verify()
        aborted = {aborted_seq(e.result) for e in core.audit.entries() if e.operation == "abort"}
        last = {}
        for e in core.audit.entries():
            if e.operation in ("write", "write.pattern", "delete") and e.seq not in aborted:
                last[e.key] = e
        for key, e in last.items():
            kb = key.encode()
            value = core.read_sync(key, use_cache=False)
            if e.operation == "delete":
                assert value is None, f"{key}: deleted at {e.seq} but still readable"
                assert key not in core.vector
                continue
            ns = core.pattern_store if e.operation == "write.pattern" else core.durable
            rec = decode_record(kb, ns.get(kb), "durable")
            assert rec.seq == e.seq, f"{key}: durable holds seq {rec.seq}, the log's last word is {e.seq}"
            assert rec.kind == (PATTERN if e.operation == "write.pattern" else 0)
            assert hashlib.sha256(rec.payload).digest() == e.digest
            cached = core.cache.get(kb)
            if cached is not None:
                assert decode_record(kb, cached, "cache").seq == e.seq
            plain = deserialize(rec.payload)
            plain = plain["value"] if rec.kind == PATTERN else plain
            assert (key in core.vector) == isinstance(plain, str)
            assert core.read_sync(key) == plain
        for kb, raw in core.pattern_store.scan(b""):
            r = decode_record(kb, raw, "patterns")
            e = last.get(kb.decode())
            if r.kind != TOMBSTONE:
                assert e is not None and e.operation == "write.pattern" and e.seq == r.seq
        return n


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 4])
def test_sigkill_at_every_fanout_step(tmp_path, threads):
    """One writer thread, and four at once (their writes are committed in shared batches)."""
    rng = random.Random(20261129 + threads - 1)
    path = tmp_path / "mem"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = 0
    steps_killed = set()
    for run in range(RUNS):
        step = STEPS[run % len(STEPS)] if run < len(STEPS) else rng.choice(STEPS)
        # positions are saved every 7 writes; batched writes make fewer calls of each step
        occurrence = rng.randrange(1, 5 if step == "state.inside" else 12 if threads == 1 else 6)
        proc = subprocess.run(
            [
                sys.executable,
                str(WRITER),
                str(path),
                str(rng.randrange(1 << 30)),
                step,
                str(occurrence),
                str(40 * threads),
                str(threads),
            ],
            env=env,
            capture_output=True,
            timeout=300,
        )
        if proc.returncode == -9:
            killed += 1
            steps_killed.add(step)
        else:
            assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        assert_layers_agree_with_log(path)
    assert killed >= RUNS // 2
    assert steps_killed == set(STEPS[: min(RUNS, len(STEPS))])  # the first runs visit every step
