"""An in-process event bus: ``memory.write`` / ``memory.delete`` to sync and async handlers.

``emit`` never blocks and never raises: events go into a bounded queue that one
daemon thread drains; when the queue is full the event is dropped and counted.
A handler that raises is counted and the others still run; a slow handler only
delays later deliveries (and, once the queue fills, causes counted drops).
"""

from __future__ import annotations

import asyncio
import fnmatch
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventBus"]

_STOP = object()


@dataclass(frozen=True)
class Event:
    """What happened: ``type`` (``memory.write``, ``memory.delete``), the key, its log sequence and layer outcomes."""

    type: str
    key: str
    seq: int
    results: dict[str, str] = field(default_factory=dict)
    actor: str = ""
    time: float = 0.0
    replayed: bool = False


class EventBus:
    """Publish/subscribe with glob patterns (``"memory.*"``), delivered on a background thread.

    Parameters
    ----------
    max_queue : int
        Events waiting for delivery; beyond it ``emit`` drops and counts.

    Examples
    --------
    >>> bus = EventBus()
    >>> seen = []
    >>> _ = bus.subscribe("memory.*", lambda e: seen.append((e.type, e.key)))
    >>> bus.emit(Event("memory.write", "k", 0))
    True
    >>> bus.drain(); seen
    [('memory.write', 'k')]
    >>> bus.close()
    """

    def __init__(self, max_queue: int = 10_000) -> None:
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue: expected a positive integer, got {max_queue!r}")
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._handlers: list[tuple[str, Callable[[Event], Any]]] = []
        self._lock = threading.Lock()
        self.emitted = self.delivered = self.dropped = self.handler_errors = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="memstrata-events", daemon=True)
        self._thread.start()

    def subscribe(self, pattern: str, handler: Callable[[Event], Any]) -> Callable[[], None]:
        """Call ``handler(event)`` (a function or ``async def``) for event types matching ``pattern``.

        Returns a function that unsubscribes.
        """
        if not isinstance(pattern, str):
            raise TypeError(f"pattern: expected a glob string such as 'memory.*', got {type(pattern).__name__}")
        if not callable(handler):
            raise TypeError(f"handler: expected a callable, got {type(handler).__name__}")
        item = (pattern, handler)
        with self._lock:
            self._handlers = [*self._handlers, item]

        def unsubscribe() -> None:
            with self._lock:
                self._handlers = [h for h in self._handlers if h is not item]

        return unsubscribe

    def emit(self, event: Event) -> bool:
        """Queue ``event``; False (and counted in ``dropped``) when the queue is full."""
        if not self._handlers:
            return True
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            return False
        self.emitted += 1
        return True

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued event has been delivered (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.001)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        q = self._queue
        while True:
            event = q.get()
            try:
                if event is _STOP:
                    return
                for pattern, handler in self._handlers:
                    if not fnmatch.fnmatchcase(event.type, pattern):
                        continue
                    try:
                        out = handler(event)
                        if asyncio.iscoroutine(out):
                            loop.run_until_complete(out)
                        self.delivered += 1
                    except Exception:  # a handler's failure is counted, never propagated to the writer
                        self.handler_errors += 1
            finally:
                q.task_done()

    def stats(self) -> dict[str, int]:
        return {
            "emitted": self.emitted,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "handler_errors": self.handler_errors,
            "queued": self._queue.qsize(),
        }

    def close(self) -> None:
        """Deliver what is queued, then stop the thread."""
        if not self._thread.is_alive():
            return
        self.drain()
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        if self._loop is not None and not self._thread.is_alive():
            self._loop.close()
