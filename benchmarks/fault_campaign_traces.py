"""The long fault campaign over trace databases (issue table row "trace database").

    PYTHONPATH=tests python benchmarks/fault_campaign_traces.py [N_INJECTIONS] [SEED]

Writes one trace database (every trace type, deltas, trained dictionaries,
replaced ids, a retention run), closes it (and a second one left as a killed
writer leaves it), and applies N seeded injections to each
(default 2,000; every kind of ``tests/faults/damage.py`` in turn, to the
database or its mark file), each on a fresh copy that is then opened, read in
full and verified. Prints the table row: injections, read right or detected,
wrong value returned, lost with verify() ok, foreign exception. The fast
seeded sample (320) runs in CI as ``tests/faults/test_trace_faults.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from faults.trace_campaign import campaign  # tests/ on PYTHONPATH, as pytest has it


def main(n: int = 2000, seed: int = 20261129) -> int:
    print("| target | injections | read right or detected | wrong value returned | lost, verify() ok "
          "| foreign exception |")
    print("|---|---|---|---|---|---|")
    failed = 0
    for unclosed in (False, True):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            counts, bad = campaign(Path(tmp), n, seed, unclosed=unclosed)
        ok = counts["read right"] + counts["detected"]
        label = "trace database (unclosed)" if unclosed else "trace database"
        print(f"| {label} | {n:,} | {ok:,} (incl. {counts['read right']:,} read right) "
              f"| {counts['wrong value']} | {counts['lost, verify() ok']} | {counts['foreign exception']} |", flush=True)
        print(f"({time.perf_counter() - t0:.0f} s, seed {seed})", file=sys.stderr)
        for line in bad[:20]:
            print("  ", line, file=sys.stderr)
        failed += len(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))
