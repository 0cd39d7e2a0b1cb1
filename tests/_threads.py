"""Running one piece of work in several threads at once, with their failures reported in the main thread."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_in_threads(work: Callable[[int], object], n_threads: int) -> None:
    """Run ``work(t)`` for ``t`` in ``range(n_threads)``, each in its own thread; re-raise the first failure.

    A failed assertion inside a thread would otherwise only print a warning;
    every thread is joined before anything is raised.
    """
    errors: list[BaseException] = []

    def guarded(t: int) -> None:
        try:
            work(t)
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
