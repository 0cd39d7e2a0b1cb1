"""``monitor`` and ``tune`` command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from memstrata.cli._output import EXIT, Failed, emit, json_option, store_argument, table

__all__ = ["COMMANDS"]


def _repo_option(f: Any) -> Any:
    return click.option("--repo", help="Backup repository whose newest backup counts (default STORE/ops/backups).")(f)


def _threshold_check_arguments(f: Any) -> Any:
    """STORE, --repo, --config and --json: the arguments of the commands that check a store against thresholds."""
    config = click.option(
        "--config", type=click.Path(dir_okay=False), help="JSON file of thresholds (AlertConfig fields)."
    )
    for decorate in (json_option, config, _repo_option, store_argument):  # bottom-up, as stacked decorators
        f = decorate(f)
    return f


def _alert_config(config: str | None) -> Any:
    from memstrata.ops import AlertConfig

    if config is None:
        return AlertConfig()
    import json

    return AlertConfig.from_dict(json.loads(Path(config).read_text()))


def _collect(store: str, repo: str | None) -> dict[str, Any]:
    from memstrata.ops import collect_metrics
    from memstrata.store import is_store

    if not is_store(store):
        raise FileNotFoundError(f"{store} is not a memstrata store (no log/ or store.sqlite)")
    return collect_metrics(store, backup_repo=repo)


@click.group()
def monitor() -> None:
    """Metrics, health checks, alerts, Prometheus exposition and an HTML report."""


@monitor.command("metrics", epilog="\b\nExamples:\n  memstrata monitor metrics STORE --json\n"
                 "  memstrata monitor metrics STORE --prometheus > /var/lib/node_exporter/memstrata.prom")
@store_argument
@_repo_option
@click.option("--prometheus", is_flag=True, help="Print the Prometheus text exposition.")
@json_option
def monitor_metrics(store: str, repo: str | None, prometheus: bool, as_json: bool) -> None:
    """Sizes per tier, agent and kind, counts, ratios, a latency sample and backup age (also recorded)."""
    from memstrata.ops import prometheus_text

    m = _collect(store, repo)
    if prometheus and not as_json:
        click.echo(prometheus_text(m), nl=False)
        return
    emit(as_json, m, lambda r: table(f"metrics {store}", ["metric", "value"], [[k, v] for k, v in r.items()]))


@monitor.command("health", epilog="\b\nExamples:\n  memstrata monitor health STORE\n  memstrata monitor health STORE --json")
@_threshold_check_arguments
def monitor_health(store: str, repo: str | None, config: str | None, as_json: bool) -> None:
    """Run the health checks; exit 3 if any fails."""
    from memstrata.ops import health_checks

    checks = health_checks(store, _collect(store, repo), _alert_config(config))
    emit(as_json, {"ok": all(c["ok"] for c in checks), "checks": checks},
         lambda r: table(f"health {store}", ["check", "status", "detail"],
                         [[c["name"], "ok" if c["ok"] else c["severity"], c["detail"]] for c in r["checks"]]))
    if not all(c["ok"] for c in checks):
        raise Failed(EXIT["problems"])


@monitor.command("alerts", epilog="\b\nExamples:\n  memstrata monitor alerts STORE --json")
@_threshold_check_arguments
def monitor_alerts(store: str, repo: str | None, config: str | None, as_json: bool) -> None:
    """Evaluate thresholds, open and resolve alerts; exit 3 while an ERROR or CRITICAL alert is active."""
    from memstrata.ops import evaluate_alerts, health_checks

    cfg = _alert_config(config)
    m = _collect(store, repo)
    state = evaluate_alerts(store, m, health_checks(store, m, cfg), cfg)
    emit(as_json, state, lambda s: table(f"alerts {store}", ["severity", "alert", "message"],
                                         [[a["severity"], k, a["message"]] for k, a in s["active"].items()]))
    if state["worst"] in ("ERROR", "CRITICAL"):
        raise Failed(EXIT["problems"])


@monitor.command("report", epilog="\b\nExamples:\n  memstrata monitor report STORE report.html")
@store_argument
@click.argument("output", type=click.Path(dir_okay=False, path_type=str))
@_repo_option
@json_option
def monitor_report(store: str, output: str, repo: str | None, as_json: bool) -> None:
    """Write a self-contained HTML page with figures, health, alerts and plots over time."""
    from memstrata.ops import evaluate_alerts, health_checks, html_report, metric_history

    m = _collect(store, repo)
    checks = health_checks(store, m)
    alerts = evaluate_alerts(store, m, checks)
    Path(output).write_text(html_report(metric_history(store), m, checks, alerts), encoding="utf-8")
    emit(as_json, {"output": output, "samples": len(metric_history(store))},
         lambda r: click.echo(f"wrote {output} ({r['samples']} samples)"))


@click.group()
def tune() -> None:
    """Adaptive tuning (opt-in): what the tuner would change, within bounds."""


@tune.command("plan", epilog="\b\nExamples:\n  memstrata tune plan STORE --json")
@store_argument
@click.option("--config", type=click.Path(dir_okay=False), help="JSON file of targets and bounds (TuneConfig fields).")
@json_option
def tune_plan(store: str, config: str | None, as_json: bool) -> None:
    """Show the bounded changes to hot capacity, compression level and idle thresholds the recorded metrics ask for."""
    import json

    from memstrata.ops import TuneConfig, metric_history, plan_tuning
    from memstrata.store import MemoryStore

    cfg = TuneConfig.from_dict(json.loads(Path(config).read_text())) if config else TuneConfig()
    with MemoryStore(store, read_only=True) as s:
        store_config = s.config
    plan = plan_tuning(store_config, metric_history(store), cfg)
    emit(as_json, plan, lambda p: table(f"tune plan ({p['samples']} samples)", ["knob", "from", "to", "reason"],
                                        [[k, c["from"], c["to"], c["reason"]] for k, c in p["changes"].items()]))


COMMANDS = [monitor, tune]
