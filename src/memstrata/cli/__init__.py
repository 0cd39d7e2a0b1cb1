"""The ``memstrata`` command: ``memstrata GROUP COMMAND STORE [ARGS]``.

>>> from memstrata.cli import cli
>>> sorted(cli.commands)[:4]
['backup', 'demo', 'migrate', 'monitor']
"""

from __future__ import annotations

import os
import sys

import click

from memstrata.cli._output import EXIT, Failed

__all__ = ["cli", "main"]

EPILOG = """\b
Examples:
  memstrata demo --dir demo-store && memstrata stats demo-store
  memstrata backup create STORE REPO            full, then incremental backups
  memstrata backup restore REPO TARGET --at 2026-11-29T01:00
  memstrata backup verify REPO --drill
  memstrata prune plan STORE && memstrata prune apply STORE PLAN_ID
  memstrata monitor health STORE --json

\b
Exit status: 0 ok; 1 error (bad input, missing store, I/O, damage that stopped
the command); 2 usage error; 3 a check found problems (verify, health, alerts);
4 the store is open for writing in another process; 130 interrupted;
141 stdout closed by its reader (no message).
"""


def _version() -> str:
    from memstrata import __version__

    return __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(_version(), prog_name="memstrata")
def cli() -> None:
    """Small, fast and safe memory for AI agents: inspect, back up, prune, migrate and monitor stores."""


def _register() -> None:
    from memstrata.cli import _monitor_cmds, _ops_cmds, _store_cmds

    for module in (_store_cmds, _ops_cmds, _monitor_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``memstrata`` console script; returns the exit status."""
    from memstrata.errors import MemstrataError
    from memstrata.store import StoreLockedError

    try:
        cli.main(args=argv, prog_name="memstrata", standalone_mode=False)
        status = 0
    except Failed as exc:
        status = exc.status
    except click.exceptions.Abort:
        click.echo("memstrata: interrupted", err=True)
        status = EXIT["interrupted"]
    except click.exceptions.Exit as exc:
        status = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        status = exc.exit_code
    except BrokenPipeError:
        status = EXIT["broken_pipe"]
    except StoreLockedError as exc:
        click.echo(f"memstrata: error: {exc}", err=True)
        status = EXIT["locked"]
    except (OSError, ValueError, TypeError, KeyError, MemstrataError) as exc:
        click.echo(f"memstrata: error: {exc}", err=True)
        status = EXIT["error"]
    if status == EXIT["broken_pipe"]:
        # the reader went away: point stdout at /dev/null so the interpreter's final flush stays quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
