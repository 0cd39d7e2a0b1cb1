"""One of several processes writing through Redis + PostgreSQL at once.

Usage: python _core_server_writer.py REDIS_URL DATABASE_URL TABLE_PREFIX NAMESPACE NAME N
"""

from __future__ import annotations

import sys

from memstrata.core import MemoryCore


def main(redis_url: str, database_url: str, prefix: str, namespace: str, name: str, n: str) -> None:
    with MemoryCore(
        redis_url=redis_url, database_url=database_url, table_prefix=prefix, redis_namespace=namespace, instance=name, checkpoint_every=50
    ) as core:
        for i in range(int(n)):
            core.write_sync(f"shared:{i % 10}", {"writer": name, "i": i}, actor=name)
            core.write_sync(f"{name}:{i}", f"note {i} from {name}", actor=name)
            if i % 7 == 0:
                core.delete_sync(f"{name}:{i}", actor=name)
            if i % 11 == 0:  # a pattern over a shared key, which later values and deletes of either writer cover
                core.write_sync(f"shared:{i % 10}", {"writer": name, "i": i}, actor=name, metadata={"is_pattern": True})
            if i % 13 == 5:
                core.delete_sync(f"shared:{i % 10}", actor=name)


if __name__ == "__main__":
    main(*sys.argv[1:7])
