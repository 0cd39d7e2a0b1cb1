"""An in-process event bus: ``memory.write`` / ``memory.delete`` to sync and async handlers.

``emit`` never blocks and never raises: events go into a bounded queue that one
daemon thread drains; when the queue is full the event is dropped and counted.
A handler that raises is counted and the others still run; a slow handler only
delays later deliveries (and, once the queue fills, causes counted drops).

The thread wakes for the first event of a burst, waits ``LINGER_SECONDS`` for
more (less when the queue fills to half), and delivers them together: a writer
then pays an append to a deque per event, not a thread wake-up and a hand-over
of the interpreter lock. Every wake-up of the thread takes the interpreter lock
from the writer at its next system call, so the linger is long enough to spread
that cost over tens of writes; deliveries lag writes by up to that much.
:meth:`EventBus.post` queues the fields and leaves building the
:class:`Event` to the thread as well.
"""

from __future__ import annotations

import asyncio
import fnmatch
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["Event", "EventBus"]

_STOP = object()
#: how long the delivery thread waits, once woken, for more events to deliver together
LINGER_SECONDS = 0.01


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


_EVENT_FIELDS = tuple(f.name for f in fields(Event))
_new_event = object.__new__


def _event_of(item: tuple[Any, ...]) -> Event:
    """The :class:`Event` of a posted ``(type, key, seq, results, actor, time)`` tuple.

    Filled through the instance's ``__dict__``: the same object the frozen
    dataclass's ``__init__`` makes (equal, hashable, frozen), without its
    per-field ``object.__setattr__`` calls (2 us of the bus thread's ~5 us per
    event, measured).
    """
    e = _new_event(Event)
    d = vars(e)
    d.update(zip(_EVENT_FIELDS, item))
    d["replayed"] = False
    return e


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
        self._max_queue = max_queue
        self._items: deque[Any] = deque()  # appends and pops are atomic: the writer takes no lock
        self._wake = threading.Condition(threading.Lock())
        self._sleeping = self._lingering = False
        self._woken = False  # a wake-up is on its way to the thread (set under _wake): no writer sends another
        self._wake_at = max(1, max_queue // 2)  # queued events that end a linger early
        self._handlers: list[tuple[str, Callable[[Event], Any]]] = []
        self._routes: dict[str, list[Callable[[Event], Any]]] = {}  # event type -> its handlers, in subscription order
        self._lock = threading.Lock()
        self.emitted = self.delivered = self.dropped = self.handler_errors = 0
        self._processed = 0
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
            self._routes = {}  # a new dict, not a clear(): the bus thread may be reading the old one

        def unsubscribe() -> None:
            with self._lock:
                self._handlers = [h for h in self._handlers if h is not item]
                self._routes = {}

        return unsubscribe

    def emit(self, event: Event) -> bool:
        """Queue ``event``; False (and counted in ``dropped``) when the queue is full."""
        if not self._handlers:
            return True
        if len(self._items) >= self._max_queue:
            self.dropped += 1
            return False
        self._put(event)
        self.emitted += 1
        return True

    def post(self, type: str, key: str, seq: int, results: dict[str, str], actor: str, time: float) -> bool:
        """:meth:`emit` of ``Event(type, key, seq, results, actor, time)``, built on the delivery thread."""
        if not self._handlers:
            return True
        items = self._items
        if len(items) >= self._max_queue:
            self.dropped += 1
            return False
        items.append((type, key, seq, results, actor, time))  # _put, inline: this is every write's path
        if not self._woken and (self._sleeping or (self._lingering and len(items) >= self._wake_at)):
            self._notify()
        self.emitted += 1
        return True

    def _put(self, item: Any) -> None:
        items = self._items
        items.append(item)
        # read after the append: a thread about to sleep sees the item or is woken
        if not self._woken and (self._sleeping or (self._lingering and len(items) >= self._wake_at)):
            self._notify()

    def _notify(self) -> None:
        # until the thread runs (it needs the interpreter lock the writer holds), every later post would
        # notify again: one wake-up per wait is enough
        with self._wake:
            self._woken = True
            self._wake.notify()

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued event has been delivered (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        if self._processed < self.emitted:
            self._notify()  # no need to linger: someone is waiting
        while self._processed < self.emitted and time.monotonic() < deadline:
            time.sleep(0.001)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        items = self._items
        while True:
            with self._wake:
                self._sleeping = True  # set before looking, so an emit after the look wakes us
                while not items:
                    self._woken = False  # under _wake, before each wait: a notify after this wakes this wait
                    self._wake.wait(0.1)
                self._sleeping = False
                self._lingering = True
                self._woken = False
                self._wake.wait(LINGER_SECONDS)
                self._lingering = False
            while items:
                event = items.popleft()
                if event is _STOP:
                    return
                if type(event) is tuple:
                    event = _event_of(event)
                self._deliver(loop, event)
                self._processed += 1

    def _handlers_of(self, type: str) -> list[Callable[[Event], Any]]:
        """The handlers whose pattern matches ``type`` (matched once per type, until the subscriptions change)."""
        routes = self._routes
        found = routes.get(type)
        if found is None:
            found = routes[type] = [h for pattern, h in self._handlers if fnmatch.fnmatchcase(type, pattern)]
        return found

    def _deliver(self, loop: asyncio.AbstractEventLoop, event: Event) -> None:
        for handler in self._handlers_of(event.type):
            try:
                out = handler(event)
                if out is not None and asyncio.iscoroutine(out):  # most handlers are plain functions returning None
                    loop.run_until_complete(out)
                self.delivered += 1
            except Exception:  # a handler's failure is counted, never propagated to the writer
                self.handler_errors += 1

    def stats(self) -> dict[str, int]:
        return {
            "emitted": self.emitted,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "handler_errors": self.handler_errors,
            "queued": len(self._items),
        }

    def close(self) -> None:
        """Deliver what is queued, then stop the thread."""
        if not self._thread.is_alive():
            return
        self.drain()
        self._put(_STOP)
        self._notify()
        self._thread.join(timeout=10)
        if self._loop is not None and not self._thread.is_alive():
            self._loop.close()
