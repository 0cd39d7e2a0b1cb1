"""Store commands: ``demo``, ``stats``, ``verify``, ``upgrade``, ``repair`` and ``optimize``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from memstrata.cli._output import EXIT, Failed, emit, json_option, store_argument, table

__all__ = ["COMMANDS"]


def _require_store(store: str) -> Path:
    from memstrata.store import is_store

    path = Path(store)
    if not is_store(path):
        raise FileNotFoundError(f"{path} is not a memstrata store (no log/ or store.sqlite)")
    return path


@click.command(epilog="\b\nExamples:\n  memstrata demo\n  memstrata demo --dir demo-store --rows 2000 --json")
@click.option("--data", metavar="DIR", help="A data set with texts.jsonl and embeddings.npy (default: the bundled sample).")
@click.option("--dir", "directory", metavar="DIR",
              help="Keep the store at exactly DIR (openable by `memstrata stats DIR`); default: a temporary one, deleted.")
@click.option("--rows", type=int, default=None, help="Use only the first ROWS texts.")
@click.option("--preset", default="aggressive", type=click.Choice(["conservative", "moderate", "aggressive"]))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def demo(data: str | None, directory: str | None, rows: int | None, preset: str, quiet: bool, as_json: bool) -> None:
    """Store a realistic agent-memory workload and show what memstrata saved."""
    from memstrata.cli._demo import format_report, run_demo

    report = run_demo(data=data, directory=directory, rows=rows, preset=preset, progress=not quiet and not as_json)
    emit(as_json, report, lambda r: click.echo(format_report(r)))


@click.command(epilog="\b\nExamples:\n  memstrata stats STORE\n  memstrata stats STORE --json --verify")
@store_argument
@click.option("--verify", "check", is_flag=True, help="Also read and check every frame (exit 3 on problems).")
@json_option
def stats(store: str, check: bool, as_json: bool) -> None:
    """Print a store's statistics (opened read-only; another process may be writing)."""
    from memstrata.store import MemoryStore

    path = _require_store(store)
    with MemoryStore(path, read_only=True) as s:
        st = s.get_statistics()
        st["path"] = str(path)
        if check:
            st["verify"] = s.verify()
    emit(as_json, st, _render_stats)
    if check and not st["verify"]["ok"]:
        raise Failed(EXIT["problems"])


def _render_stats(stats: dict[str, Any]) -> None:
    from memstrata.cli._demo import human_bytes

    o, t, d = stats["overall"], stats["tiered_storage"], stats["deduplication"]
    lines = [
        f"memstrata store {stats['path']}",
        f"  keys               {o['keys']:,}",
        f"  raw bytes          {human_bytes(o['raw_bytes'])}",
        f"  stored bytes       {human_bytes(o['stored_bytes'])}  ({o['memory_reduction_percent']:.1f}% smaller)",
        f"  files on disk      {human_bytes(o['disk_bytes'])}",
        f"  dedup ratio        {d['dedup_ratio']:.2f}x  ({d['unique_blobs']:,} unique blobs)",
        f"  warm               {t['warm']['items']:,} keys, {human_bytes(t['warm']['bytes'])}",
        f"  cold               {t['cold']['items']:,} keys, {human_bytes(t['cold']['bytes'])} in {t['cold']['packs']} packs",
        f"  tombstones         {t['tombstones']:,}",
        f"  last sequence no.  {stats['middleware']['seq']:,}",
    ]
    if "verify" in stats:
        v = stats["verify"]
        lines.append(f"  verify             {'ok' if v['ok'] else 'PROBLEMS'} ({v['blobs']:,} blobs checked)")
        lines += [f"    {err}" for err in v["errors"][:20]]
    click.echo("\n".join(lines))


@click.command(epilog="\b\nExamples:\n  memstrata verify STORE\n  memstrata verify STORE --json")
@store_argument
@json_option
def verify(store: str, as_json: bool) -> None:
    """Read and check every frame of a store; exit 3 when anything is damaged."""
    from memstrata.store import MemoryStore

    with MemoryStore(_require_store(store), read_only=True) as s:
        report = s.verify()

    def render(v: dict[str, Any]) -> None:
        click.echo(f"{'ok' if v['ok'] else 'PROBLEMS'}: {v['keys']:,} keys, {v['blobs']:,} blobs checked")
        for e in v["errors"][:50]:
            click.echo(f"  {e}")

    emit(as_json, report, render)
    if not report["ok"]:
        raise Failed(EXIT["problems"])


def _engine_call(name: str, store: str, dry_run: bool, as_json: bool) -> None:
    """``MemoryStore.upgrade`` or ``.repair`` on ``store`` (repair also takes a store too damaged to look like one)."""
    from memstrata.store import MemoryStore

    path = _require_store(store) if name == "upgrade" or dry_run else Path(store)
    if dry_run:
        from memstrata.ops import detect_version

        emit(as_json, {"store": str(path), "dry_run": True, "version": detect_version(path)})
        return
    report = getattr(MemoryStore, name)(path)
    emit(as_json, report, lambda r: table(f"{name} {path}", ["field", "value"], [[k, v] for k, v in r.items()]))
    if isinstance(report, dict) and (report.get("ok") is False or report.get("verify_ok") is False):
        raise Failed(EXIT["problems"])


@click.command(epilog="\b\nExamples:\n  memstrata upgrade STORE --dry-run\n  memstrata upgrade STORE --json")
@store_argument
@click.option("--dry-run", is_flag=True, help="Only report the store's format version.")
@json_option
def upgrade(store: str, dry_run: bool, as_json: bool) -> None:
    """Convert a format-1 store (store.sqlite) to format 2 in place (MemoryStore.upgrade).

    The old files stay until the new store verifies."""
    _engine_call("upgrade", store, dry_run, as_json)


@click.command(epilog="\b\nExamples:\n  memstrata repair STORE --dry-run\n  memstrata repair STORE --json")
@store_argument
@click.option("--dry-run", is_flag=True, help="Only report the store's format version.")
@json_option
def repair(store: str, dry_run: bool, as_json: bool) -> None:
    """Rebuild a store's index from its self-describing records (MemoryStore.repair).

    Reports what could not be recovered; exit 3 if the store could not be made whole."""
    _engine_call("repair", store, dry_run, as_json)


@click.group()
def optimize() -> None:
    """Maintenance that keeps every value: compaction and tier migration."""


@optimize.command("compact", epilog="\b\nExamples:\n  memstrata optimize compact STORE --dry-run")
@store_argument
@click.option("--dry-run", is_flag=True, help="Report the garbage and tombstones compaction would remove.")
@json_option
def optimize_compact(store: str, dry_run: bool, as_json: bool) -> None:
    """Drop tombstones and unreferenced blobs, rewrite sparse packs, vacuum."""
    from memstrata.store import MemoryStore

    path = _require_store(store)
    if dry_run:
        with MemoryStore(path, read_only=True) as s:
            st = s.get_statistics()
        report = {"dry_run": True, "garbage_blobs": st["deduplication"]["garbage_blobs"],
                  "tombstones": st["tiered_storage"]["tombstones"], "disk_bytes": st["overall"]["disk_bytes"]}
    else:
        with MemoryStore(path, {"migration_interval_seconds": None}) as s:
            before = s.disk_bytes()
            report = dict(s.compact())
            report.update(disk_bytes_before=before, disk_bytes_after=s.disk_bytes(), dry_run=False)
    emit(as_json, report, lambda r: table(f"compact {path}", ["field", "value"], [[k, v] for k, v in r.items()]))


@optimize.command("tiers", epilog="\b\nExamples:\n  memstrata optimize tiers STORE --json")
@store_argument
@json_option
def optimize_tiers(store: str, as_json: bool) -> None:
    """Apply the idle and capacity rules now (move values between hot, warm and cold)."""
    from memstrata.store import MemoryStore

    with MemoryStore(_require_store(store)) as s:
        report = dict(s.run_migrations())
    emit(as_json, report, lambda r: table("tier moves", ["move", "count"], [[k, v] for k, v in r.items()]))


COMMANDS = [demo, stats, verify, upgrade, repair, optimize]
