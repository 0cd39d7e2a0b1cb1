"""Write the golden backup repository of repository format version 1 (run once; the directory is committed).

    PYTHONPATH=<a memstrata whose ops.Repository writes version 1> python tests/golden/make_backup_repo_v1.py

Version 1 names chunks by SHA-256. The repository holds a full backup and an
incremental one of a small format-2 store (warm and cold values, a deleted
key); ``backup-repo-v1.expected.json`` lists what each backup's store reads
back as, by sequence number. ``test_ops_backup.py`` restores and verifies
both with the current memstrata, forever. Never regenerate it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def main() -> None:
    from memstrata import MemoryStore
    from memstrata.ops import create_backup

    repo = HERE / "backup-repo-v1"
    shutil.rmtree(repo, ignore_errors=True)
    expected: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        cfg = {"migration_interval_seconds": None}
        with MemoryStore(store, cfg) as s:
            s.store_many({f"note:{i}": {"agent": f"a{i % 2}", "text": f"golden backup memory {i}"} for i in range(40)},
                         tier="warm")
            s.store_many({f"cold:{i}": list(range(i)) for i in range(10)}, tier="cold")
            expected[str(s.seq)] = {k: s[k] for k in s.keys()}
        create_backup(store, repo, incremental=False)
        with MemoryStore(store, cfg) as s:
            s.store_many({f"note:{i}": {"changed": i} for i in range(0, 40, 5)}, tier="warm")
            s.delete("cold:3")
            expected[str(s.seq)] = {k: s[k] for k in s.keys()}
        create_backup(store, repo)
    marker = json.loads((repo / "memstrata-backup.json").read_text())
    assert marker["version"] == 1, "run this with a memstrata that writes version 1 repositories"
    (HERE / "backup-repo-v1.expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
