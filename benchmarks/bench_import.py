"""Import cost: ``import memstrata`` vs ``import numpy`` in a fresh interpreter.

Goal: ``import memstrata`` costs at most 1.5x ``import numpy``. Each round
starts a new interpreter, so the figure includes interpreter start-up for both
(``python -c pass`` is the baseline case).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

STATEMENTS = {
    "python-startup": "pass",
    "numpy-ref": "import numpy",
    "memstrata": "import memstrata",
    "memstrata-first-use": "import memstrata; memstrata.BloomFilter(10); memstrata.digest(b'x')",
}


@pytest.mark.parametrize("case", list(STATEMENTS))
@pytest.mark.benchmark(group="import-cost")
def test_import_cost(benchmark, case: str) -> None:  # type: ignore[no-untyped-def]
    cmd = [sys.executable, "-c", STATEMENTS[case]]
    benchmark.pedantic(subprocess.run, args=(cmd,), kwargs={"check": True}, rounds=10, iterations=1, warmup_rounds=1)
