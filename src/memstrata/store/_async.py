"""``async`` twins of :class:`~memstrata.MemoryStore`'s blocking methods.

Each runs its blocking twin in the default executor (``asyncio.to_thread``), so
an event loop keeps serving while the store reads, writes or fsyncs; the store
is thread-safe, so many of them may run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from memstrata.types import TierLike


class _Blocking(Protocol):
    """The blocking methods the twins call (the mixin's self-type)."""

    def store(self, key: str | bytes, value: Any, tier: TierLike = ..., pin: bool = ...,
              allow_loss: bool = ...) -> int: ...
    def store_many(self, items: Mapping[str | bytes, Any] | Iterable[tuple[str | bytes, Any]],
                   tier: TierLike = ..., pin: bool = ..., allow_loss: bool = ..., batch: int = ...) -> Any: ...
    def retrieve(self, key: str | bytes, default: Any = ...) -> Any: ...
    def delete(self, key: str | bytes) -> int: ...
    def migrate(self, key: str | bytes, tier: TierLike) -> None: ...
    def run_migrations(self) -> dict[str, int]: ...
    def compact(self) -> dict[str, int]: ...
    def verify(self) -> dict[str, Any]: ...
    def get_statistics(self) -> dict[str, Any]: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class AsyncStoreMethods:
    """Mixed into :class:`~memstrata.MemoryStore`: ``astore``, ``aretrieve``, ``adelete``, ... ."""

    async def astore(
        self: _Blocking, key: str | bytes, value: Any, tier: TierLike = "hot", pin: bool = False,
        allow_loss: bool = False,
    ) -> int:
        """:meth:`store` off the event loop."""
        return await asyncio.to_thread(self.store, key, value, tier, pin, allow_loss)

    async def astore_many(self: _Blocking, items: Any, **kwargs: Any) -> Any:
        """:meth:`store_many` off the event loop."""
        return await asyncio.to_thread(self.store_many, items, **kwargs)

    async def aretrieve(self: _Blocking, key: str | bytes, *default: Any) -> Any:
        """:meth:`retrieve` off the event loop (``default`` as there)."""
        return await asyncio.to_thread(self.retrieve, key, *default)

    async def adelete(self: _Blocking, key: str | bytes) -> int:
        """:meth:`delete` off the event loop."""
        return await asyncio.to_thread(self.delete, key)

    async def amigrate(self: _Blocking, key: str | bytes, tier: TierLike) -> None:
        """:meth:`migrate` off the event loop."""
        await asyncio.to_thread(self.migrate, key, tier)

    async def arun_migrations(self: _Blocking) -> dict[str, int]:
        """:meth:`run_migrations` off the event loop."""
        return await asyncio.to_thread(self.run_migrations)

    async def acompact(self: _Blocking) -> dict[str, int]:
        """:meth:`compact` off the event loop."""
        return await asyncio.to_thread(self.compact)

    async def averify(self: _Blocking) -> dict[str, Any]:
        """:meth:`verify` off the event loop."""
        return await asyncio.to_thread(self.verify)

    async def aget_statistics(self: _Blocking) -> dict[str, Any]:
        """:meth:`get_statistics` off the event loop."""
        return await asyncio.to_thread(self.get_statistics)

    async def aflush(self: _Blocking) -> None:
        """:meth:`flush` off the event loop."""
        await asyncio.to_thread(self.flush)

    async def aclose(self: _Blocking) -> None:
        """:meth:`close` off the event loop."""
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self: _Blocking, *exc: object) -> None:
        await asyncio.to_thread(self.close)
