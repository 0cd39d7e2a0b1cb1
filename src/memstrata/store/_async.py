"""``async`` twins of :class:`~memstrata.MemoryStore`'s blocking methods.

Each runs its blocking twin in the default executor (``asyncio.to_thread``), so
an event loop keeps serving while the store reads, writes or fsyncs; the store
is thread-safe, so many of them may run at once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memstrata.store._store import MemoryStore


class AsyncStoreMethods:
    """Mixed into :class:`~memstrata.MemoryStore`: ``astore``, ``aretrieve``, ``adelete``, ... ."""

    async def astore(
        self: MemoryStore, key: str | bytes, value: Any, tier: str | int = "hot", pin: bool = False,
        allow_loss: bool = False,
    ) -> int:
        """:meth:`store` off the event loop."""
        return await asyncio.to_thread(self.store, key, value, tier, pin, allow_loss)

    async def astore_many(self: MemoryStore, items: Any, **kwargs: Any) -> Any:
        """:meth:`store_many` off the event loop."""
        return await asyncio.to_thread(self.store_many, items, **kwargs)

    async def aretrieve(self: MemoryStore, key: str | bytes, *default: Any) -> Any:
        """:meth:`retrieve` off the event loop (``default`` as there)."""
        return await asyncio.to_thread(self.retrieve, key, *default)

    async def adelete(self: MemoryStore, key: str | bytes) -> int:
        """:meth:`delete` off the event loop."""
        return await asyncio.to_thread(self.delete, key)

    async def amigrate(self: MemoryStore, key: str | bytes, tier: str | int) -> None:
        """:meth:`migrate` off the event loop."""
        await asyncio.to_thread(self.migrate, key, tier)

    async def arun_migrations(self: MemoryStore) -> dict[str, int]:
        """:meth:`run_migrations` off the event loop."""
        return await asyncio.to_thread(self.run_migrations)

    async def acompact(self: MemoryStore) -> dict[str, int]:
        """:meth:`compact` off the event loop."""
        return await asyncio.to_thread(self.compact)

    async def averify(self: MemoryStore) -> dict[str, Any]:
        """:meth:`verify` off the event loop."""
        return await asyncio.to_thread(self.verify)

    async def aget_statistics(self: MemoryStore) -> dict[str, Any]:
        """:meth:`get_statistics` off the event loop."""
        return await asyncio.to_thread(self.get_statistics)

    async def aflush(self: MemoryStore) -> None:
        """:meth:`flush` off the event loop."""
        await asyncio.to_thread(self.flush)

    async def aclose(self: MemoryStore) -> None:
        """:meth:`close` off the event loop."""
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
