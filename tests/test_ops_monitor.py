"""Monitoring: metrics, health checks, alerts that fire and resolve, Prometheus text, the HTML report in Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from memstrata import MemoryStore
from memstrata.ops import (
    PLOT_COLORS,
    AlertConfig,
    TuneConfig,
    collect_metrics,
    create_backup,
    evaluate_alerts,
    health_checks,
    html_report,
    metric_history,
    plan_tuning,
    prometheus_text,
)

CFG = {"migration_interval_seconds": None}


def make(path: Path, n: int = 300, agent_bytes: int = 200) -> None:
    with MemoryStore(path, CFG) as s:
        for i in range(n):
            s.store(f"m{i}", {"agent": f"a{i % 3}", "kind": ("memory", "pattern")[i % 2], "confidence": 0.5,
                              "text": "y" * agent_bytes + str(i)}, tier=("warm", "cold")[i % 2])


def test_metrics_and_history(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make(store)
    m = collect_metrics(store, now=100.0)
    assert m["keys"] == 300 and m["items"]["warm"] + m["items"]["cold"] == 300
    assert set(m["agents_bytes"]) == {"a0", "a1", "a2"} and set(m["kinds_bytes"]) == {"memory", "pattern"}
    assert m["query_ms"]["n"] == 200 and m["query_ms"]["p99"] >= m["query_ms"]["p50"] > 0
    assert m["read_errors"] == [] and m["backup_age_seconds"] is None and m["dedup_ratio"] >= 1.0
    collect_metrics(store, now=200.0)
    assert [h["time"] for h in metric_history(store)] == [100.0, 200.0]
    with MemoryStore(store, CFG) as live:
        live.retrieve("m1")
        assert collect_metrics(live, record=False)["hit_rate"] is not None


def test_health_checks(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make(store)
    checks = {c["name"]: c for c in health_checks(store, collect_metrics(store))}
    assert set(checks) == {"layout", "limits", "index_freshness", "backup_recency", "integrity_sample", "latency_sample"}
    assert not checks["backup_recency"]["ok"] and checks["layout"]["ok"] and checks["integrity_sample"]["ok"]
    create_backup(store, store / "ops" / "backups")
    assert all(c["ok"] for c in health_checks(store, collect_metrics(store)))
    tight = AlertConfig(global_warning_bytes=1, global_critical_bytes=10**12, query_warning_ms=0.0)
    checks = {c["name"]: c for c in health_checks(store, collect_metrics(store), tight)}
    assert checks["limits"]["severity"] == "WARNING" and checks["latency_sample"]["severity"] == "WARNING"


def test_alerts_fire_and_resolve_on_thresholds(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make(store, agent_bytes=2000)
    m = collect_metrics(store)
    per_agent = max(m["agents_bytes"].values())
    top = f"agent_memory:{max(m['agents_bytes'], key=m['agents_bytes'].get)}"
    cfg = AlertConfig(agent_warning_bytes=per_agent // 2, agent_critical_bytes=per_agent * 2,
                      global_warning_bytes=1, global_critical_bytes=2, retention_days=1)
    state = evaluate_alerts(store, m, [], cfg, now=1000.0)
    assert state["active"]["agent_memory:a0"]["severity"] == "WARNING"
    assert state["active"]["global_memory"]["severity"] == "CRITICAL" and state["worst"] == "CRITICAL"
    assert sorted(state["opened"]) == sorted(["agent_memory:a0", "agent_memory:a1", "agent_memory:a2", "global_memory"])
    cfg2 = AlertConfig(agent_warning_bytes=per_agent // 2, agent_critical_bytes=per_agent - 1)
    state = evaluate_alerts(store, m, [], cfg2, now=2000.0)
    assert state["opened"] == [] and state["active"][top]["severity"] == "CRITICAL"
    assert state["resolved_now"] == ["global_memory"] and state["active"][top]["first_seen"] == 1000.0
    state = evaluate_alerts(store, m, [], AlertConfig(), now=3000.0)
    assert state["active"] == {} and state["worst"] is None and len(state["resolved"]) == 4
    state = evaluate_alerts(store, m, [], AlertConfig(retention_days=0.001), now=3000.0 + 200)
    assert state["resolved"] == []  # retention dropped them
    slow = dict(m, query_ms=dict(m["query_ms"], p99=150.0), hit_rate=0.2)
    ids = evaluate_alerts(store, slow, [], AlertConfig(), now=4000.0)["active"]
    assert ids["query_time"]["severity"] == "WARNING" and ids["cache_hit_rate"]["severity"] == "WARNING"
    broken = [{"name": "integrity_sample", "ok": False, "severity": "CRITICAL", "detail": "bad"}]
    assert evaluate_alerts(store, m, broken, AlertConfig(), now=5000.0)["worst"] == "CRITICAL"


def test_prometheus_exposition(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    store = tmp_path / "s"
    make(store)
    text = prometheus_text(collect_metrics(store))
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"memstrata_bytes", "memstrata_keys", "memstrata_agent_bytes", "memstrata_query_milliseconds"} <= set(fams)
    assert next(s.value for s in fams["memstrata_keys"].samples) == 300


def test_tune_plan_is_bounded(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make(store)
    m = collect_metrics(store)
    with MemoryStore(store, read_only=True) as s:
        config = s.config
    cold = dict(m, hit_rate=0.1)
    plan = plan_tuning(config, [cold], TuneConfig(hot_max_bytes=config.hot_max_bytes + 1))
    assert plan["changes"]["hot_max_bytes"]["to"] == config.hot_max_bytes + 1  # clamped at the bound
    slow = dict(m, query_ms=dict(m["query_ms"], p99=50.0))
    plan = plan_tuning(config, [slow], TuneConfig(zstd_min_level=config.zstd_level))
    assert "zstd_level" not in plan["changes"] and plan["changes"]["hot_idle_seconds"]["to"] > config.hot_idle_seconds
    assert plan_tuning(config, [])["changes"] == {}


def _report(tmp_path: Path) -> Path:
    store = tmp_path / "s"
    make(store)
    for t in range(5):  # a live store records its own samples (with its real hit rate)
        with MemoryStore(store, CFG) as s:
            for i in range(50 * t):
                s.store(f"extra{t}-{i}", {"agent": "z", "text": "q" * 300 + str(i)}, tier="cold")
            for i in range(20 * (t + 1)):
                s.retrieve(f"m{i % 30}")
            collect_metrics(s, now=1_800_000_000.0 + 3600 * t)
    m = collect_metrics(store, now=1_800_000_000.0 + 3600 * 5)
    checks = health_checks(store, m)
    page = html_report(metric_history(store), m, checks, evaluate_alerts(store, m, checks))
    out = tmp_path / "report.html"
    out.write_text(page)
    return out


def test_html_report_is_self_contained(tmp_path: Path) -> None:
    page = _report(tmp_path).read_text()
    assert page.count("<svg") == 3 and "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "Tier sizes" in page and "Query latency" in page and "Cache hit rate" in page


def test_html_report_plots_render_in_chromium(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (Debian package `chromium`; .ci/chromium.sh installs it)")
    page = _report(tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1400,1100", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    for color in PLOT_COLORS:
        rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
        hits = np.abs(img - rgb).sum(axis=2) < 30
        assert hits.sum() > 200, f"plot colour {color}: {hits.sum()} pixels"  # lines drawn, not just legends
    plot_area = img[: img.shape[0] // 2]
    assert (np.abs(plot_area - 255).sum(axis=2) > 30).mean() > 0.01  # the page is not blank
