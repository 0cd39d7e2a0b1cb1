"""A MemoryCore writer that SIGKILLs itself at a chosen step of the write fan-out.

Usage: python _core_crash_writer.py DIR SEED STEP OCCURRENCE N_OPS [THREADS]
(THREADS > 1: that many threads write at once, so writes are committed in batches.)
Steps: audit.before, audit.inside (inside the append: after the intent, before the entry), audit.after,
durable.before, durable.after, cache.after, vector.after, trust.after,
events.after, state.inside (inside the save of the replay position).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading

from memstrata.core import MemoryCore


def main(path: str, seed: int, step: str, occurrence: int, n_ops: int, threads: int = 1) -> None:
    seen: dict[str, int] = {}

    def hit(name: str) -> None:
        if name == step:
            seen[name] = seen.get(name, 0) + 1
            if seen[name] == occurrence:
                os.kill(os.getpid(), signal.SIGKILL)

    def around(obj, method: str, name: str) -> None:
        inner = getattr(obj, method)

        def wrapped(*args, **kwargs):
            hit(name + ".before")
            out = inner(*args, **kwargs)
            hit(name + ".after")
            return out

        setattr(obj, method, wrapped)

    core = MemoryCore(path, checkpoint_every=7)
    store = core.audit.store
    around(store, "append", "audit")  # a batch
    around(store, "append_one", "audit")  # one entry: every write's path
    if step == "audit.inside":  # the kill point between the intent and the entry is in the Python twin of the
        store.native_append = False  # native append, which writes the same bytes in the same order
    write_log = store._write_log

    def write_log_with_kill(records):  # the intent payload is written, the entry not yet
        hit("audit.inside")
        write_log(records)

    store._write_log = write_log_with_kill
    set_state = store.set_state

    def set_state_with_kill(values):
        hit("state.inside")
        set_state(values)

    store.set_state = set_state_with_kill
    around(core.durable, "put_newer", "durable")
    around(core.durable, "put_many", "durable")  # a batch of concurrent writes
    around(core.cache, "put_newer", "cache")
    around(core.vector, "put", "vector")
    around(core.trust, "update", "trust")
    around(core.events, "post", "events")
    core.events.subscribe("memory.*", lambda e: None)

    keys = [f"k{i}" for i in range(12)]

    def run(rng: random.Random, n: int) -> None:
        for _ in range(n):
            key = rng.choice(keys)
            r = rng.random()
            if r < 0.2:
                core.delete_sync(key, actor="crasher")
            elif r < 0.3:
                core.write_sync(
                    key, {"n": rng.random()}, metadata={"is_pattern": True, "pattern_type": "t", "confidence": 0.5}
                )
            elif r < 0.65:
                core.write_sync(key, f"text {rng.random()} about {key}", actor="crasher")
            else:
                core.write_sync(key, {"n": rng.randrange(1000), "blob": bytes(rng.randrange(64))}, actor="crasher")

    workers = [threading.Thread(target=run, args=(random.Random(seed + t), n_ops // threads)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    core.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), *map(int, sys.argv[6:7]))
