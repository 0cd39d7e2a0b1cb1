"""Shared pieces of the commands: JSON or rich output, progress bars, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

__all__ = ["EXIT", "Failed", "emit", "json_option", "progress_bar", "store_argument"]

#: Exit statuses scripts can rely on (also in ``memstrata --help``).
EXIT = {
    "ok": 0,          # done; checks passed
    "error": 1,       # bad input, missing store or backup, I/O error, damage that stopped the command
    "usage": 2,       # unknown command or option (click)
    "problems": 3,    # a check ran and found problems: verify, backup verify, health, active ERROR alerts
    "locked": 4,      # another process has the store open for writing
    "interrupted": 130,  # Ctrl-C
    "broken_pipe": 141,  # the reader of stdout went away (128 + SIGPIPE), no message
}


class Failed(Exception):
    """A command finished and wants a non-zero exit status (output already printed)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document (for scripts).")(f)


def store_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("store", type=click.Path(file_okay=False, path_type=str))(f)


def emit(as_json: bool, data: Any, render: Callable[[Any], None] | None = None) -> None:
    """``data`` as JSON on stdout, or rendered for people by ``render``."""
    try:
        if as_json or render is None:
            sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")
            sys.stdout.flush()
        else:
            render(data)
            sys.stdout.flush()
    except BrokenPipeError:
        raise Failed(EXIT["broken_pipe"]) from None


def _default(o: Any) -> Any:
    if isinstance(o, bytes):
        return {"hex": o.hex()}
    return str(o)


def console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=True)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(x) for x in r])
    console().print(t)


@contextmanager
def progress_bar(enabled: bool, description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr (only on a terminal); yields the callback ``(done, total)``."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as p:
        task = p.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            p.update(task, completed=done, total=total)

        yield update
