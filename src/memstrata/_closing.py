"""``ClosesOnExit``: the ``with`` statement of every class that holds files, threads or locks.

A class that owns resources has one ``close()`` (idempotent); leaving a ``with``
block, normally or by an exception, calls it. Deriving from this base is how a
class says so, instead of writing the same ``__enter__``/``__exit__`` pair again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

__all__ = ["ClosesOnExit"]

_T = TypeVar("_T", bound="ClosesOnExit")


class ClosesOnExit:
    """A context manager whose exit is :meth:`close`; ``__enter__`` returns the object itself.

    Subclasses implement ``close()`` so that a second call does nothing: it
    may run again from an explicit call after the block, or from ``__del__``.

    Examples
    --------
    >>> class Handle(ClosesOnExit):
    ...     closed = False
    ...     def close(self) -> None:
    ...         self.closed = True
    >>> with Handle() as h:
    ...     h.closed
    False
    >>> h.closed
    True
    """

    __slots__ = ()

    if TYPE_CHECKING:  # each subclass defines it; declared here for type checkers only

        def close(self) -> None: ...

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
