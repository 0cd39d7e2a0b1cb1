"""Crash stress: SIGKILL the writer at random moments, many times, and check the store after each.

Run: ``PYTHONPATH=tests python benchmarks/crash_stress.py --runs 1000 [--dir DIR]``. Exits non-zero on
the first lost acknowledged write or failed ``verify()``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from test_crash import crash_round  # tests/ on PYTHONPATH, as pytest has it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh-every", type=int, default=100, help="start a new store every N runs (keeps each check short)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        total = 0
        written: set[int] = set()
        deleted: set[int] = set()
        uncertain: set[int] = set()
        for run in range(1, args.runs + 1):
            if (run - 1) % args.fresh_every == 0:
                path = (args.dir or Path(tmp)) / f"crash-store-{run:05d}"
                total += 0 if run == 1 else len(written)
                written, deleted, uncertain = set(), set(), set()
                start = 0
            start = crash_round(path, start, rng.uniform(0.2, 0.9), written, deleted, uncertain)
            if run % 50 == 0:
                print(f"{run} runs, {total + len(written)} acknowledged writes, all present, verify() ok "
                      f"({time.time() - t0:.0f} s)", flush=True)
        total += len(written)
        print(f"OK: {args.runs} SIGKILL runs, {total} acknowledged writes survived, verify() passed after every kill")
    return 0


if __name__ == "__main__":
    sys.exit(main())
