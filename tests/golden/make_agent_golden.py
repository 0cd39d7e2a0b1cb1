"""Write a golden ``AgentMemory`` directory of the current record format (run once per format; files are committed).

    python tests/golden/make_agent_golden.py

The memory holds what every kind of record field looks like: scopes, dict
content, metadata, near-duplicate links (both ways), a superseded fact, an
updated memory with history, an expired and a pinned memory, a forgotten one
and a pattern with evidence. ``agent-v<format>.expected.json`` holds every
record (``to_dict`` without the derived ``hash``) and every history.
``test_agent_golden.py`` checks the committed directories still open to these
answers, forever. Never regenerate the files of a released format.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def unit(seed: int, near: int | None = None) -> np.ndarray:
    """A fixed unit vector (24-d); ``near``: one at cosine > 0.99 to ``unit(near)``."""
    if near is not None:
        base = unit(near)
        x = base + np.random.default_rng(1000 + seed).normal(0, 0.02, base.shape)
    else:
        x = np.random.default_rng(seed).normal(size=24)
    return (x / np.linalg.norm(x)).astype(np.float32)


def snapshot(memory: Any) -> dict[str, Any]:
    """Every record (expired and superseded ones too) and every history, as JSON-ready values."""
    records = {}
    for rec in memory.get_all(limit=None, include_expired=True, as_of=1e12):
        d = rec.to_dict()
        del d["hash"], d["duplicate_of"]
        records[str(rec.id)] = d
    for id_ in list(memory._records):  # superseded ones are hidden from get_all at a later time
        if str(id_) not in records:
            d = memory._records[id_].copy().to_dict()
            del d["hash"], d["duplicate_of"]
            records[str(id_)] = d
    return {"records": dict(sorted(records.items(), key=lambda kv: int(kv[0]))),
            "history": {k: memory.history(int(k)) for k in sorted(records, key=int)}}


def build(path: Path) -> dict[str, Any]:
    from memstrata.agent import AgentConfig, AgentMemory

    now = [1_750_000_000.0]

    def clock() -> float:
        now[0] += 60.0
        return now[0]

    with AgentMemory(path, config=AgentConfig(min_occurrences=2, pattern_threshold=0.0), clock=clock) as m:
        a = m.add("the user prefers metric units", user_id="ana", vector=unit(1), metadata={"source": "chat"})
        m.add("The user prefers metric units!", user_id="ana", vector=unit(1, near=1))  # near duplicate: linked
        m.add("the user prefers metric units, always", user_id="ana", vector=unit(2, near=1))  # linked to a
        trade = {"type": "trade", "action": "buy", "symbol": "ABC", "success": True, "profit": 12.5}
        m.add_many([trade, {**trade, "symbol": "XYZ", "profit": 3.0}], agent_id="bot", vectors=np.stack([unit(3), unit(4)]))
        old = m.add("the office is in Berlin", run_id="r1", vector=unit(5))
        m.update(old.id, "the office is in Munich", supersede=True, vector=unit(6))
        up = m.add("meeting at 10", user_id="ana", vector=unit(7), metadata={"room": 4})
        m.update(up.id, "meeting at 11", {"room": 5}, vector=unit(8))
        gone = m.add("a secret to forget", user_id="ana", vector=unit(9))
        m.add("linked to the secret", user_id="ana", vector=unit(10, near=9))
        m.forget(gone.id)
        exp = m.add("an expired note", vector=unit(11))
        m.expire(exp.id)
        m.pin(m.add("a pinned fact", vector=unit(12), category="facts").id)
        m.extract_patterns()
        m.get(a.id)  # an access count
        return snapshot(m)


def main() -> int:
    from memstrata.agent.state import FORMAT

    out = HERE / f"agent-v{FORMAT}"
    if out.exists():
        shutil.rmtree(out)
    expected = build(out)
    (HERE / f"agent-v{FORMAT}.expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({sum(p.stat().st_size for p in out.rglob('*') if p.is_file())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
