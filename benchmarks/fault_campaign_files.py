"""The long fault campaign over Bloom filter files and VectorMemory files (issue 18's table).

    PYTHONPATH=tests python benchmarks/fault_campaign_files.py [--n 2000] [--seed 20261129]

For each artefact kind (a saved Bloom filter, a VectorMemory snapshot, a closed
durable VectorMemory directory) it damages ``n`` copies, every kind of damage
in turn (``tests/faults/damage.py``), loads each and compares everything it
answers with the saved artefact; one table row per kind. Exit status 1 if any
wrong answer, silent loss or foreign exception occurred. The seeded sample CI
runs is ``tests/faults/test_file_faults.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from faults.file_campaign import ARTEFACTS, campaign  # tests/ on PYTHONPATH, as pytest has it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="injections per artefact kind")
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args()
    print("| target | injections | read right or detected | wrong value returned | lost silently | foreign exception |")
    print("|---|---|---|---|---|---|")
    bad = 0
    for artefact in sorted(ARTEFACTS):
        with tempfile.TemporaryDirectory() as work:
            outcomes, defects = campaign(Path(work), artefact, args.n, args.seed)
        fine = outcomes["read right"] + outcomes["detected"]
        print(
            f"| {artefact} | {args.n} | {fine} (incl. {outcomes['read right']} no effect) | "
            f"{outcomes['wrong value']} | {outcomes['silent loss']} | {outcomes['foreign exception']} |",
            flush=True,
        )
        for d in defects[:10]:
            print(f"    {d}", file=sys.stderr)
        bad += len(defects)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
