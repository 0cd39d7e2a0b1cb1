"""MemoryStore's async twins do what their blocking twins do, off the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from memstrata import MemoryStore


def test_async_twins_round_trip(tmp_path: Path) -> None:
    async def main() -> None:
        async with MemoryStore(tmp_path / "s") as store:
            seq = await store.astore("a", {"v": 1})
            assert seq == store.seq
            await store.astore_many({"b": [1, 2], "c": "three"})
            got = await asyncio.gather(*(store.aretrieve(k) for k in ("a", "b", "c")))
            assert got == [{"v": 1}, [1, 2], "three"]
            assert await store.aretrieve("missing", None) is None
            with pytest.raises(KeyError):
                await store.aretrieve("missing")
            await store.adelete("b")
            await store.amigrate("a", "cold")
            assert store.tier_of("a") == "cold"
            assert (await store.averify())["ok"]
            assert (await store.aget_statistics())["overall"]["keys"] == 2
            await store.acompact()
            await store.arun_migrations()
            await store.aflush()
        with MemoryStore(tmp_path / "s", read_only=True) as again:
            assert again.retrieve("a") == {"v": 1} and "b" not in again

    asyncio.run(main())


def test_async_work_runs_off_the_event_loop_thread() -> None:
    seen: list[int] = []

    class Spy(MemoryStore):
        def store(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(threading.get_ident())
            return super().store(*args, **kwargs)

    async def main() -> int:
        with Spy() as store:
            await store.astore("k", 1)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert seen and seen[0] != loop_thread
