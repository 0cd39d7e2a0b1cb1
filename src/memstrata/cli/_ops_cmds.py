"""``backup``, ``prune`` and ``migrate`` command groups."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from memstrata.cli._output import EXIT, Failed, emit, json_option, progress_bar, store_argument, table

__all__ = ["COMMANDS"]


def _default_repo(store: str) -> str:
    return str(Path(store) / "ops" / "backups")


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


# --------------------------------------------------------------- backup --

@click.group()
def backup() -> None:
    """Backups: create, list, verify (with drills), restore (latest, --at, --seq), rotate."""


@backup.command("create", epilog="\b\nExamples:\n  memstrata backup create STORE /backups/agent\n"
                "  memstrata backup create STORE file:///mnt/nfs/b --full\n  memstrata backup create STORE REPO --agent planner")
@store_argument
@click.argument("repo")
@click.option("--full", is_flag=True, help="Do not link to the previous backup (read every file again).")
@click.option("--agent", help="Back up only this agent's records.")
@click.option("--dry-run", is_flag=True, help="Read everything and report what would be written; write nothing.")
@json_option
def backup_create(store: str, repo: str, full: bool, agent: str | None, dry_run: bool, as_json: bool) -> None:
    """Back up STORE into REPO (a path or fsspec URL), consistent while a writer keeps writing."""
    from memstrata.ops import create_backup

    with progress_bar(not as_json, "backing up") as progress:
        m = create_backup(store, repo, incremental=not full, agent=agent, dry_run=dry_run, progress=progress)
    summary = {k: v for k, v in m.items() if k != "files"} | {"n_files": len(m["files"])}
    emit(as_json, summary, lambda s: table(f"backup {s['id']}{' (dry run)' if dry_run else ''}", ["field", "value"],
                                           [[k, v] for k, v in s.items()]))


@backup.command("list", epilog="\b\nExamples:\n  memstrata backup list REPO --json")
@click.argument("repo")
@json_option
def backup_list(repo: str, as_json: bool) -> None:
    """List the backups in REPO, oldest first."""
    from memstrata.ops import list_backups

    rows = list_backups(repo)
    emit(as_json, rows, lambda rs: table(f"backups in {repo}", ["id", "created (UTC)", "kind", "seq", "agent", "bytes", "added"],
                                         [[r["id"], _when(r["created"]), r["kind"], r["seq"], r["agent"] or "",
                                           r["bytes_total"], r["bytes_added"]] for r in rs]))


@backup.command("verify", epilog="\b\nExamples:\n  memstrata backup verify REPO\n  memstrata backup verify REPO --drill --json")
@click.argument("repo")
@click.option("--snapshot", help="Only this backup id.")
@click.option("--drill", is_flag=True, help="Also restore each backup into a temporary directory and verify the store.")
@json_option
def backup_verify(repo: str, snapshot: str | None, drill: bool, as_json: bool) -> None:
    """Check every chunk against its digest (and with --drill, restore and verify); exit 3 on problems."""
    from memstrata.ops import verify_backups

    with progress_bar(not as_json, "verifying") as progress:
        report = verify_backups(repo, snapshot, drill=drill, progress=progress)

    def render(r: dict[str, Any]) -> None:
        table(f"verify {repo}{' with drills' if drill else ''}", ["backup", "result"],
              [[s["id"], "ok" if s["ok"] else "; ".join(s["errors"][:3])] for s in r["snapshots"]])

    emit(as_json, report, render)
    if not report["ok"]:
        raise Failed(EXIT["problems"])


@backup.command("restore", epilog="\b\nExamples:\n  memstrata backup restore REPO /srv/restored\n"
                "  memstrata backup restore REPO /srv/restored --at 2026-11-28T23:00\n"
                "  memstrata backup restore REPO /srv/restored --seq 120000 --dry-run")
@click.argument("repo")
@click.argument("target", type=click.Path(path_type=str))
@click.option("--snapshot", help="Restore this backup id.")
@click.option("--at", "at", help="Restore the newest backup taken at or before this time (ISO 8601 or Unix seconds).")
@click.option("--seq", type=int, help="Restore the newest backup whose sequence number is at most SEQ.")
@click.option("--dry-run", is_flag=True, help="Show which backup would be restored and check its chunks exist.")
@json_option
def backup_restore(repo: str, target: str, snapshot: str | None, at: str | None, seq: int | None, dry_run: bool,
                   as_json: bool) -> None:
    """Restore a backup from REPO into TARGET (a new directory; an agent backup goes into an existing store)."""
    from memstrata.ops import restore_backup

    with progress_bar(not as_json, "restoring") as progress:
        report = restore_backup(repo, target, snapshot=snapshot, at=at, seq=seq, dry_run=dry_run, progress=progress)
    emit(as_json, report, lambda r: table("restore", ["field", "value"], [[k, v] for k, v in r.items()]))
    if not report.get("ok", True):
        raise Failed(EXIT["problems"])


@backup.command("rotate", epilog="\b\nExamples:\n  memstrata backup rotate REPO --keep-last 3 --keep-daily 7 --dry-run")
@click.argument("repo")
@click.option("--keep-last", type=int, default=0, help="Keep the N newest backups.")
@click.option("--keep-daily", type=int, default=0, help="Keep the newest backup of each of the last N days with backups.")
@click.option("--keep-weekly", type=int, default=0, help="Likewise per ISO week.")
@click.option("--keep-monthly", type=int, default=0, help="Likewise per month.")
@click.option("--dry-run", is_flag=True, help="Show what would be forgotten; delete nothing.")
@json_option
def backup_rotate(repo: str, keep_last: int, keep_daily: int, keep_weekly: int, keep_monthly: int, dry_run: bool,
                  as_json: bool) -> None:
    """Forget backups no policy keeps and delete chunks no backup uses."""
    from memstrata.ops import rotate_backups

    report = rotate_backups(repo, keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly,
                            keep_monthly=keep_monthly, dry_run=dry_run)
    emit(as_json, report, lambda r: table(f"rotate{' (dry run)' if dry_run else ''}", ["backup", "decision"],
                                          [[k, "keep: " + ",".join(v)] for k, v in r["keep"].items()]
                                          + [[k, "forget"] for k in r["forget"]]))


# ---------------------------------------------------------------- prune --

@click.group()
def prune() -> None:
    """Pruning as plans: plan, apply (backup + undo point), undo, list."""


def _prune_config(config: str | None) -> Any:
    from memstrata.ops import PruneConfig

    if config is None:
        return PruneConfig()
    import json

    return PruneConfig.from_dict(json.loads(Path(config).read_text()))


@prune.command("plan", epilog="\b\nExamples:\n  memstrata prune plan STORE\n"
               "  memstrata prune plan STORE --strategy time --strategy space --json")
@store_argument
@click.option("--strategy", "strategies", multiple=True, type=click.Choice(["time", "performance", "space"]),
              help="Strategies to run (default: all three).")
@click.option("--config", type=click.Path(dir_okay=False), help="JSON file of thresholds (PruneConfig fields).")
@click.option("--now", type=float, help="Plan as if it were this Unix time.")
@json_option
def prune_plan(store: str, strategies: tuple[str, ...], config: str | None, now: float | None, as_json: bool) -> None:
    """Plan what to delete or archive and why, and save the plan (nothing is changed)."""
    from memstrata.ops import plan_prune, records_from_store, save_plan
    from memstrata.store import MemoryStore

    with MemoryStore(store, read_only=True) as s:
        records = records_from_store(s)
    plan = plan_prune(records, _prune_config(config), now=now, strategies=strategies or ("time", "performance", "space"))
    save_plan(store, plan)

    def render(p: dict[str, Any]) -> None:
        table(f"plan {p['id']}: {len(p['items'])} of {p['n_records']} records, {p['bytes_reclaimed']:,} bytes",
              ["key", "action", "strategy", "reason"], [[i["key"], i["action"], i["strategy"], i["reason"]]
                                                         for i in p["items"][:200]])
        click.echo(f"apply with: memstrata prune apply {store} {p['id']}")

    emit(as_json, plan, render)


@prune.command("apply", epilog="\b\nExamples:\n  memstrata prune apply STORE PLAN_ID --dry-run\n"
               "  memstrata prune apply STORE PLAN_ID --repo /backups/agent")
@store_argument
@click.argument("plan_id")
@click.option("--repo", help="Backup repository for the automatic backup (default STORE/ops/backups).")
@click.option("--dry-run", is_flag=True, help="Check the plan against the store; change nothing.")
@json_option
def prune_apply(store: str, plan_id: str, repo: str | None, dry_run: bool, as_json: bool) -> None:
    """Back up, record an undo point, then execute exactly the saved plan."""
    from memstrata.ops import apply_plan

    report = apply_plan(store, plan_id, backup_repo=repo or _default_repo(store), dry_run=dry_run)
    emit(as_json, report, lambda r: table(f"apply {plan_id}", ["field", "value"], [[k, v] for k, v in r.items()]))


@prune.command("undo", epilog="\b\nExamples:\n  memstrata prune undo STORE PLAN_ID")
@store_argument
@click.argument("plan_id")
@click.option("--dry-run", is_flag=True, help="Show what would be put back.")
@json_option
def prune_undo(store: str, plan_id: str, dry_run: bool, as_json: bool) -> None:
    """Put back, byte for byte, everything an applied plan removed or archived."""
    from memstrata.ops import undo_plan

    report = undo_plan(store, plan_id, dry_run=dry_run)
    emit(as_json, report, lambda r: click.echo(f"plan {plan_id}: {r['restored']} values put back"))


@prune.command("list", epilog="\b\nExamples:\n  memstrata prune list STORE --json")
@store_argument
@json_option
def prune_list(store: str, as_json: bool) -> None:
    """The saved plans and their status."""
    from memstrata.ops import list_plans

    plans = list_plans(store)
    emit(as_json, plans, lambda ps: table("plans", ["id", "status", "items", "bytes"],
                                          [[p["id"], p["status"], p["items"], p["bytes_reclaimed"]] for p in ps]))


# -------------------------------------------------------------- migrate --

@click.group()
def migrate() -> None:
    """Format versions: detect, and migrate step by step (backup first, original untouched on failure)."""


@migrate.command("detect", epilog="\b\nExamples:\n  memstrata migrate detect STORE --json")
@store_argument
@json_option
def migrate_detect(store: str, as_json: bool) -> None:
    """Print the store's format version and the newest one this memstrata can migrate to."""
    from memstrata.ops import default_registry, detect_version

    reg = default_registry()
    report = {"store": store, "version": detect_version(store), "latest": reg.latest(),
              "migrations": [f"{a} -> {b}" for a, b in sorted(reg.steps)]}
    emit(as_json, report, lambda r: click.echo(f"{store}: format version {r['version']} (latest known {r['latest']})"))


@migrate.command("run", epilog="\b\nExamples:\n  memstrata migrate run STORE --to 2 --dry-run\n  memstrata migrate run STORE --to 2")
@store_argument
@click.option("--to", "to", type=int, required=True, help="Target format version.")
@click.option("--repo", help="Backup repository for the automatic backup (default STORE/ops/backups).")
@click.option("--dry-run", is_flag=True, help="Show the steps; change nothing.")
@json_option
def migrate_run(store: str, to: int, repo: str | None, dry_run: bool, as_json: bool) -> None:
    """Migrate STORE to format version --to, one registered step at a time."""
    from memstrata.ops import migrate_store

    report = migrate_store(store, to, backup_repo=repo, dry_run=dry_run)
    emit(as_json, report, lambda r: table("migrate", ["field", "value"], [[k, v] for k, v in r.items()]))


COMMANDS = [backup, prune, migrate]
