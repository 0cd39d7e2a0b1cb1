"""Dictionary training off the caller's path: one worker thread that trains when asked.

Training a zstd dictionary takes tens of milliseconds to a second (zstd's
cover search over the samples). A writer that trained inline made the one
``store()`` that reached a due point wait for all of it; with a
:class:`TrainingWorker` that call only asks for a training and returns. zstd
releases the GIL while it trains, so other threads keep running meanwhile.

Frames made before the new dictionary is adopted name the dictionary they were
compressed with (or none), so they stay readable whatever is trained later.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["TrainingWorker"]

log = logging.getLogger("memstrata.codecs")


class TrainingWorker:
    """Runs ``train()`` in a background thread each time :meth:`request` is called.

    At most one thread runs at a time; requests made while it trains make it
    train once more when it is done (never lost, never run twice at once). An
    exception from ``train`` is logged and the worker stays usable: the caller
    keeps its current dictionary. :meth:`close` waits for a running training
    and refuses new ones, so the owner can close what ``train`` writes to.

    >>> done = []
    >>> worker = TrainingWorker(lambda: done.append(1))
    >>> worker.request(); worker.wait()
    True
    >>> done, worker.close()
    ([1], None)
    """

    def __init__(self, train: Callable[[], object], name: str = "memstrata-dictionary") -> None:
        self._train = train
        self._name = name
        self._lock = threading.Lock()
        self._due = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.failures = 0

    def request(self) -> None:
        """Ask for a training; returns at once (nothing happens after :meth:`close`)."""
        with self._lock:
            if self._closed:
                return
            self._due = True
            if self._thread is not None:  # the running thread sees _due before it exits
                return
            thread = self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._due or self._closed:
                    self._thread = None
                    return
                self._due = False
            try:
                self._train()
                self.runs += 1
            except Exception as exc:
                self.failures += 1
                log.warning("memstrata: dictionary training failed, the current dictionary stays in use (%s: %s)",
                            type(exc).__name__, exc)

    @property
    def pending(self) -> bool:
        """True while a training is asked for or running."""
        with self._lock:
            return self._due or self._thread is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no training is asked for or running; False if ``timeout`` seconds passed first."""
        with self._lock:
            thread = self._thread
        while thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
            with self._lock:  # a request made meanwhile may have started another thread
                thread = self._thread
        return True

    def close(self) -> None:
        """Refuse new trainings and wait for the running one. Idempotent."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join()
