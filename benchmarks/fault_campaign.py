"""The long fault campaign over stores, backup repositories, Bloom files and VectorMemory files.

    PYTHONPATH=tests python benchmarks/fault_campaign.py [--n 2000] [--seed 20261129] [--only TEXT]

For each artefact kind (the store's segment files, index checkpoint, cold
packs and tail marker, closed and as a killed writer leaves them; a backup
repository's chunks, manifests, catalog and marker; a saved Bloom filter; a
VectorMemory snapshot; a closed durable VectorMemory directory) it damages ``n`` copies, every kind of damage in turn
(``tests/faults/damage.py``), loads each and reads everything back, and prints
one table row per kind: read right or detected, wrong value returned, lost
silently (for the store: with ``verify()`` ok), foreign exception. Exit
status 1 if any of the last three is not 0. ``--only`` keeps the kinds whose
name contains TEXT. The seeded samples CI runs are
``tests/faults/test_store_faults.py``, ``test_file_faults.py`` and ``test_backup_faults.py``;
trace databases have their own script, ``fault_campaign_traces.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path

from faults import backup_campaign, file_campaign, store_campaign  # tests/ on PYTHONPATH, as pytest has it

KINDS = [
    (f"MemoryStore {a} files{' (unclosed)' if unclosed else ''}", partial(store_campaign.campaign, unclosed=unclosed), a)
    for unclosed in (False, True)
    for a in sorted(store_campaign.ARTEFACTS)
]
KINDS += [(a, file_campaign.campaign, a) for a in sorted(file_campaign.ARTEFACTS)]
KINDS += [(f"backup repository {a} files", backup_campaign.campaign, a) for a in sorted(backup_campaign.ARTEFACTS)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="injections per artefact kind")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--only", default="", help="run the kinds whose name contains this text")
    args = parser.parse_args()
    print("| target | injections | read right or detected | wrong value returned | lost silently | foreign exception |")
    print("|---|---|---|---|---|---|")
    bad = 0
    for label, campaign, artefact in KINDS:
        if args.only not in label:
            continue
        with tempfile.TemporaryDirectory() as work:
            outcomes, defects = campaign(Path(work), artefact, args.n, args.seed)
        fine = outcomes["read right"] + outcomes["detected"]
        print(
            f"| {label} | {args.n} | {fine} (incl. {outcomes['read right']} no effect) | "
            f"{outcomes['wrong value']} | {outcomes['silent loss']} | {outcomes['foreign exception']} |",
            flush=True,
        )
        for d in defects[:10]:
            print(f"    {d}", file=sys.stderr)
        bad += len(defects)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
