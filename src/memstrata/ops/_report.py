"""Exports of the metrics: the Prometheus text exposition and a self-contained HTML report with SVG plots."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["PLOT_COLORS", "html_report", "prometheus_text"]

#: Line colours of the report's plots (a screenshot test looks for them).
PLOT_COLORS = ("#1f77b4", "#d62728", "#2ca02c")


def prometheus_text(metrics: dict[str, Any]) -> str:
    """The metrics in Prometheus' text exposition format (via prometheus-client)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    reg = CollectorRegistry()
    g = Gauge("memstrata_bytes", "Bytes by kind (raw, stored, disk) and tier", ["kind"], registry=reg)
    for k, v in metrics["bytes"].items():
        g.labels(k).set(v)
    Gauge("memstrata_keys", "Live keys", registry=reg).set(metrics["keys"])
    items = Gauge("memstrata_tier_items", "Keys per tier", ["tier"], registry=reg)
    for k, v in metrics["items"].items():
        items.labels(k).set(v)
    agent = Gauge("memstrata_agent_bytes", "Serialized bytes of each agent's records", ["agent"], registry=reg)
    for k, v in metrics["agents_bytes"].items():
        agent.labels(k).set(v)
    kind = Gauge("memstrata_kind_bytes", "Serialized bytes per record kind", ["kind"], registry=reg)
    for k, v in metrics["kinds_bytes"].items():
        kind.labels(k).set(v)
    for name, doc, value in (
        ("memstrata_compression_ratio", "Compression ratio of the engine", metrics["compression_ratio"]),
        ("memstrata_dedup_ratio", "Logical bytes / unique bytes", metrics["dedup_ratio"]),
        ("memstrata_cache_hit_rate", "Hit rate of the hot tier and durable reads", metrics["hit_rate"]),
        ("memstrata_backup_age_seconds", "Age of the newest backup", metrics["backup_age_seconds"]),
        ("memstrata_tombstones", "Deleted keys not compacted yet", metrics["tombstones"]),
    ):
        if value is not None:
            Gauge(name, doc, registry=reg).set(value)
    q = Gauge("memstrata_query_milliseconds", "Retrieve latency of a random sample", ["quantile"], registry=reg)
    for k in ("p50", "p99", "max"):
        if metrics["query_ms"][k] is not None:
            q.labels(k).set(metrics["query_ms"][k])
    return generate_latest(reg).decode()


def _svg_plot(title: str, times: Sequence[float], series: dict[str, Sequence[float | None]], unit: str) -> str:
    w, h, pad = 640, 240, 48
    vals = [v for s in series.values() for v in s if v is not None]
    if len(times) == 0 or not vals:
        return f'<figure><figcaption>{html.escape(title)}</figcaption><p>no samples yet</p></figure>'
    t0, t1 = min(times), max(times)
    lo, hi = min(0.0, min(vals)), max(vals)
    hi = hi if hi > lo else lo + 1.0

    def xy(t: float, v: float) -> str:
        x = pad + (w - 2 * pad) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.5)
        y = h - pad - (h - 2 * pad) * (v - lo) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>',
             f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#888"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#888"/>',
             f'<text x="4" y="{pad}" font-size="11">{hi:.3g} {html.escape(unit)}</text>',
             f'<text x="4" y="{h - pad}" font-size="11">{lo:.3g}</text>',
             f'<text x="{pad}" y="{h - pad + 16}" font-size="11">{time.strftime("%Y-%m-%d %H:%M", time.gmtime(t0))}</text>',
             f'<text x="{w - pad - 110}" y="{h - pad + 16}" font-size="11">'
             f'{time.strftime("%Y-%m-%d %H:%M", time.gmtime(t1))}</text>']
    for i, (name, s) in enumerate(series.items()):
        color = PLOT_COLORS[i % len(PLOT_COLORS)]
        pts = [xy(t, v) for t, v in zip(times, s) if v is not None]
        if len(pts) == 1:
            x, y = pts[0].split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{color}"/>')
        elif pts:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="3" points="{" ".join(pts)}"/>')
        parts.append(f'<text x="{w - pad - 100}" y="{pad - 20 + 14 * i}" font-size="12" fill="{color}">'
                     f'{html.escape(name)}</text>')
    parts.append("</svg>")
    return f'<figure><figcaption>{html.escape(title)}</figcaption>{"".join(parts)}</figure>'


def html_report(history: list[dict[str, Any]], metrics: dict[str, Any], health: list[dict[str, Any]],
                alerts: dict[str, Any]) -> str:
    """One HTML page (no scripts, no external files): figures, health, alerts and plots over time."""
    times = [h["time"] for h in history]
    MiB = 2**20
    plots = [
        _svg_plot("Tier sizes", times, {t: [h["bytes"][t] / MiB for h in history] for t in ("warm", "cold", "hot")},
                  "MiB"),
        _svg_plot("Cache hit rate", times, {"hit rate": [h.get("hit_rate") for h in history]}, ""),
        _svg_plot("Query latency", times, {"p50": [h["query_ms"]["p50"] for h in history],
                                           "p99": [h["query_ms"]["p99"] for h in history]}, "ms"),
    ]
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(c['name'])}</td><td class='{'ok' if c['ok'] else 'bad'}'>"
                   f"{'ok' if c['ok'] else esc(c['severity'])}</td><td>{esc(c['detail'])}</td></tr>" for c in health)
    active = "".join(f"<tr><td>{esc(a['severity'])}</td><td>{esc(aid)}</td><td>{esc(a['message'])}</td></tr>"
                     for aid, a in alerts["active"].items()) or "<tr><td colspan=3>none</td></tr>"
    b = metrics["bytes"]
    figures = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in (
        ("keys", f"{metrics['keys']:,}"), ("stored", f"{b['stored'] / MiB:.2f} MiB"),
        ("raw", f"{b['raw'] / MiB:.2f} MiB"), ("disk", f"{b['disk'] / MiB:.2f} MiB"),
        ("dedup ratio", f"{metrics['dedup_ratio']:.2f}x"), ("samples", str(len(history)))))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>memstrata report: {esc(str(metrics['store']))}</title>
<style>body{{font-family:sans-serif;margin:16px}}table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:2px 6px}}
.ok{{color:#2a7}}.bad{{color:#c22;font-weight:bold}}figure{{display:inline-block;margin:8px}}</style></head>
<body><h1>memstrata report</h1><p>{esc(str(metrics['store']))}, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(metrics['time']))}</p>
<div id="plots">{''.join(plots)}</div>
<h2>Figures</h2><table>{figures}</table>
<h2>Health</h2><table>{rows}</table>
<h2>Active alerts</h2><table>{active}</table>
</body></html>
"""
