"""The long fault campaign over closed MemoryStore directories (issue 18's table).

    PYTHONPATH=tests python benchmarks/fault_campaign.py [--n 2000] [--seed 20261129]

For each artefact kind (segment files, the index checkpoint, cold packs) it
damages ``n`` copies of a closed store, every kind of damage in turn
(``tests/faults/damage.py``), opens each and reads every key, and prints one
table row per artefact: read right or detected, wrong value returned, lost with
``verify()`` ok, foreign exception. Exit status 1 if any of the last three is
not 0. The seeded sample CI runs is ``tests/faults/test_store_faults.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from faults.store_campaign import ARTEFACTS, campaign  # tests/ on PYTHONPATH, as pytest has it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="injections per artefact kind")
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args()
    print("| target | injections | read right or detected | wrong value returned | lost, verify() ok | foreign exception |")
    print("|---|---|---|---|---|---|")
    bad = 0
    for artefact in sorted(ARTEFACTS):
        with tempfile.TemporaryDirectory() as work:
            outcomes, defects = campaign(Path(work), artefact, args.n, args.seed)
        fine = outcomes["read right"] + outcomes["detected"]
        print(
            f"| MemoryStore {artefact} files | {args.n} | {fine} (incl. {outcomes['read right']} no effect) | "
            f"{outcomes['wrong value']} | {outcomes['silent loss']} | {outcomes['foreign exception']} |",
            flush=True,
        )
        for d in defects[:10]:
            print(f"    {d}", file=sys.stderr)
        bad += len(defects)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
