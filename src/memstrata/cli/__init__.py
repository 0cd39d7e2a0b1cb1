"""The ``memstrata`` command: ``demo``, ``stats PATH``, ``upgrade PATH`` and ``repair PATH``.

>>> from memstrata.cli import build_parser
>>> build_parser().parse_args(["stats", "/tmp/x", "--json"]).json
True
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memstrata", description="Small, fast and safe memory for AI agents."
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="store a realistic agent-memory workload and show what memstrata saved",
        description="Store texts, embeddings, trace records and repeated memories in a MemoryStore, "
        "then print bytes raw vs RAM vs disk, reduction, dedup ratio, tiers, latencies and recall@10.",
    )
    demo.add_argument("--data", metavar="DIR", help="a data set with texts.jsonl and embeddings.npy (default: the bundled sample)")
    demo.add_argument("--dir", metavar="DIR", help="store directory to create or reuse (default: a temporary one)")
    demo.add_argument("--rows", type=int, default=None, help="use only the first ROWS texts")
    demo.add_argument("--preset", default="aggressive", choices=["conservative", "moderate", "aggressive"])
    demo.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")

    stats = sub.add_parser("stats", help="print a store's statistics", description="Open a store read-only and print its statistics.")
    stats.add_argument("path", metavar="PATH", help="the store directory")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.add_argument("--verify", action="store_true", help="also read and check every frame")

    for name, text in (
        ("upgrade", "convert a format-1 store to format 2 in place (the old files stay until the new store verifies)"),
        ("repair", "rebuild a store's index from its self-describing records and report what could not be recovered"),
    ):
        cmd = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("path", metavar="PATH", help="the store directory")
        cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _version() -> str:
    from memstrata import __version__

    return f"memstrata {__version__}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``memstrata`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from memstrata.cli._demo import format_report, run_demo

            report = run_demo(
                data=args.data, directory=args.dir, rows=args.rows, preset=args.preset,
                progress=not args.quiet and not args.json,
            )
            print(json.dumps(report, indent=2) if args.json else format_report(report))
            return 0
        if args.command == "stats":
            return _stats(args)
        if args.command in ("upgrade", "repair"):
            from memstrata.store import MemoryStore

            report = getattr(MemoryStore, args.command)(args.path)
            if args.json:
                print(json.dumps(report, indent=2, default=str))
            else:
                print(f"memstrata {args.command} {args.path}")
                for key, value in report.items():
                    print(f"  {key:<20} {value}")
            return 0
    except (OSError, ValueError) as exc:
        print(f"memstrata: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from memstrata.errors import MemstrataError

        if isinstance(exc, MemstrataError):
            print(f"memstrata: error: {exc}", file=sys.stderr)
            return 1
        raise
    return 2


def _stats(args: Any) -> int:
    from pathlib import Path

    from memstrata.store import MemoryStore, is_store

    path = Path(args.path)
    if not is_store(path):
        print(f"memstrata: error: {path} is not a memstrata store (no log/ or store.sqlite)", file=sys.stderr)
        return 1
    with MemoryStore(path, read_only=True) as store:
        stats = store.get_statistics()
        stats["path"] = str(path)
        if args.verify:
            stats["verify"] = store.verify()
    if args.json:
        print(json.dumps(stats, indent=2, default=str))
        return 0
    from memstrata.cli._demo import human_bytes

    o, t, d = stats["overall"], stats["tiered_storage"], stats["deduplication"]
    lines = [
        f"memstrata store {path}",
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
    if args.verify:
        v = stats["verify"]
        lines.append(f"  verify             {'ok' if v['ok'] else 'PROBLEMS'} ({v['blobs']:,} blobs checked)")
        for err in v["errors"][:20]:
            lines.append(f"    {err}")
    print("\n".join(lines))
    return 0 if not args.verify or stats["verify"]["ok"] else 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
