"""The two faces of an operation, ``x_sync`` and ``async def x``, made from one definition.

An operation of :class:`~memstrata.traces.SymbolicTraceMemory` is written once,
as a method that does the quick part of the call on the caller's thread and
returns what is left that may block on the database. The sync face runs that
at once; the async face runs it in a worker thread (``asyncio.to_thread``), so
an event loop never waits on SQLite. Both faces take the signature of that
method (for ``help()``, ``inspect`` and, through the ``ParamSpec``, type
checkers); the sync face takes its docstring too.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

__all__ = ["call_faces", "commit_faces"]

_S = TypeVar("_S")
_P = ParamSpec("_P")
_R = TypeVar("_R")

_Sync = Callable[Concatenate[_S, _P], _R]
_Async = Callable[Concatenate[_S, _P], Coroutine[Any, Any, _R]]


def call_faces(
    name: str, body: Callable[Concatenate[_S, _P], Callable[[], _R]]
) -> tuple[_Sync[_S, _P, _R], _Async[_S, _P, _R]]:
    """``name_sync`` and ``name`` of an operation whose work blocks: ``body`` returns the call that does it.

    >>> class Clock:
    ...     def _ticks(self, n: int, *, step: int = 1) -> Callable[[], list[int]]:
    ...         '''The first ``n`` ticks.'''
    ...         return lambda: list(range(0, n * step, step))
    ...     ticks_sync, ticks = call_faces("ticks", _ticks)
    >>> Clock().ticks_sync(3, step=2), asyncio.run(Clock().ticks(2))
    ([0, 2, 4], [0, 1])
    >>> Clock.ticks_sync.__doc__, Clock.ticks.__doc__
    ('The first ``n`` ticks.', 'Async :meth:`ticks_sync` (what may block runs in a worker thread).')
    """

    def sync(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return body(self, *args, **kwargs)()

    async def async_(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await asyncio.to_thread(body(self, *args, **kwargs))

    _name(sync, async_, name, body, typing.get_args(_return_hint(body))[-1])
    return sync, async_


def commit_faces(
    name: str, body: Callable[Concatenate[_S, _P], tuple[_R, Callable[[], object] | None]]
) -> tuple[_Sync[_S, _P, _R], _Async[_S, _P, _R]]:
    """``name_sync`` and ``name`` of an operation that has its result at once and may leave a commit.

    ``body`` returns ``(result, commit)``: ``commit`` is ``None`` or the call that
    writes to the database before the result is handed back.
    """

    def sync(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        result, commit = body(self, *args, **kwargs)
        if commit is not None:
            commit()
        return result

    async def async_(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        result, commit = body(self, *args, **kwargs)
        if commit is not None:
            await asyncio.to_thread(commit)
        return result

    _name(sync, async_, name, body, typing.get_args(_return_hint(body))[0])
    return sync, async_


def _return_hint(body: Callable[..., Any]) -> Any:
    return typing.get_type_hints(body)["return"]


def _name(sync: Any, async_: Any, name: str, body: Callable[..., Any], returns: Any) -> None:
    """Give the faces their public names and docs, and ``body``'s signature returning ``returns``."""
    signature = inspect.signature(body).replace(return_annotation=returns)
    owner = body.__qualname__[: -len(body.__name__)]  # "SymbolicTraceMemory." for a method
    for face, face_name, doc in (
        (sync, f"{name}_sync", body.__doc__),
        (async_, name, f"Async :meth:`{name}_sync` (what may block runs in a worker thread)."),
    ):
        face.__name__ = face_name
        face.__qualname__ = owner + face_name
        face.__module__ = body.__module__
        face.__doc__ = doc
        face.__signature__ = signature
