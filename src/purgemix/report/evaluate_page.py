"""The page of ``purgemix evaluate``: per metric, every arm's mean with its 95% CI as a bar with whiskers, and
the table with the paired difference to the baseline arm. Self-contained (inline CSS and SVG)."""

from __future__ import annotations

import html
import math
from typing import Any

from .svg import fmt


def _panel(metric: str, rows: dict[str, dict[str, Any]], lower: bool, width: int = 520, bar_h: int = 20) -> str:
    cells = [(arm, c[metric]) for arm, c in rows.items() if metric in c and c[metric]["n"]]
    if not cells:
        return ""
    hi = max(c["hi"] for _, c in cells)
    lo = min(0.0, min(c["lo"] for _, c in cells))
    span = (hi - lo) or 1.0
    label_w, plot_w = 140, width - 160
    height = bar_h * len(cells) + 30

    def x(v: float) -> float:
        return label_w + (v - lo) / span * plot_w

    parts = [f'<svg width="{width}" height="{height}" role="img"><title>{html.escape(metric)}</title>']
    for i, (arm, c) in enumerate(cells):
        y = 10 + i * bar_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{html.escape(arm)}</text>')
        parts.append(f'<rect x="{x(lo):.1f}" y="{y + 3}" width="{max(0.5, x(c["mean"]) - x(lo)):.1f}" '
                     f'height="{bar_h - 6}" fill="#7aa6d8"/>')
        parts.append(f'<line x1="{x(c["lo"]):.1f}" x2="{x(c["hi"]):.1f}" y1="{y + bar_h / 2}" y2="{y + bar_h / 2}" '
                     f'stroke="#222" stroke-width="1.5"/>')
        parts.append(f'<text x="{x(c["hi"]) + 4:.1f}" y="{y + 14}" font-size="11">{fmt(c["mean"])}</text>')
    parts.append(f'<text x="{label_w}" y="{height - 4}" font-size="11" fill="#555">'
                 f'{"lower" if lower else "higher"} is better; whiskers: bootstrap 95% CI over prompts</text></svg>')
    return "".join(parts)


def _cell(c: dict[str, Any] | None, lower: bool) -> str:
    if not c or not c["n"] or math.isnan(c["mean"]):
        return "<td>-</td>"
    text = f"{c['mean']:.3f} <small>[{c['lo']:.3f}, {c['hi']:.3f}]</small>"
    d = c.get("diff")
    if d and d["n"]:
        sig = d["lo"] > 0 or d["hi"] < 0
        better = d["mean"] < 0 if lower else d["mean"] > 0
        cls = ("better" if better else "worse") if sig else "same"
        text += f'<br><span class="{cls}">{d["mean"]:+.3f} [{d["lo"]:+.3f}, {d["hi"]:+.3f}]</span>'
    return f"<td>{text}</td>"


def render_evaluate_page(table: dict[str, Any]) -> str:
    lower = set(table["lower_is_better"])
    head = "".join(f"<th>{html.escape(m)}</th>" for m in table["metrics"])
    body = "".join(
        f"<tr><th>{html.escape(arm)}</th>" + "".join(_cell(cells.get(m), m in lower) for m in table["metrics"])
        + "</tr>" for arm, cells in table["rows"].items())
    charts = "".join(f"<h3>{html.escape(m)}</h3>{_panel(m, table['rows'], m in lower)}" for m in table["metrics"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>purgemix evaluate</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}}.better{{color:#070}}
.worse{{color:#b00}}.same{{color:#666}}</style></head><body>
<h1>Fine-tune and evaluate</h1>
<p>Each arm: the same base fine-tuned with the same budget and seed. Cells: mean [95% CI]; second line: the
difference to the baseline arm <b>{html.escape(table["baseline"])}</b> on the same prompts [paired 95% CI],
green or red when the interval excludes 0.</p>
<table><tr><th>arm</th>{head}</tr>{body}</table>{charts}</body></html>
"""
