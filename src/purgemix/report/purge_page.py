"""The purge's HTML page (``STEM.report.html``), rendered from the report JSON that ``purge/run.py`` writes.

It lives with the other pages, so the purge family renders no HTML and every chart is one of ``report/svg.py``'s.
"""

from __future__ import annotations

import html
from typing import Any

from . import svg


def render_html(rep: dict[str, Any]) -> str:
    """The page of a purge report (``purge.report`` JSON): rules, duplicates, overlaps, histograms with the
    fitted thresholds, examples. Every field from the data is escaped."""
    e = html.escape
    s = rep["summary"]
    parts = [
        "<!doctype html><meta charset='utf-8'><title>purgemix purge report</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}"
        ".ex{font-size:12px;color:#333;white-space:pre-wrap}.h{display:inline-block;margin:6px}</style>",
        "<h1>purgemix purge report</h1>",
        f"<p>read {s.get('read')}, written {s.get('written')}, quarantined {s.get('quarantined')}; priors from "
        f"{e(str(rep.get('priors_source')))}</p>",
    ]
    for w in rep.get("warnings") or []:
        parts.append(f"<p style='color:#b00'>warning: {e(w)}</p>")
    parts.append("<h2>Rules</h2><table><tr><th>rule</th><th>condition (fitted)</th><th>dropped (first reason)</th>"
                 "<th>fired</th><th>reason</th></tr>")
    for r in rep["rules"]:
        parts.append(f"<tr><td>{e(r['name'])}</td><td>{e(str(r.get('condition')))}</td><td>{r['dropped_first']}</td>"
                     f"<td>{r['fired']}</td><td>{e(r.get('reason') or '')}</td></tr>")
    parts.append("</table>")
    if rep.get("dedup"):
        parts.append(f"<h2>Duplicates</h2><pre>{e(str(rep['dedup']))}</pre>")
    if rep["overlaps"]:
        parts.append("<h2>Overlaps (records on which both rules fired)</h2><table>")
        for a, c in rep["overlaps"].items():
            parts.append(f"<tr><td>{e(a)}</td><td>{e(', '.join(f'{b}: {n}' for b, n in c.items()))}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Histograms (red: thresholds)</h2>")
    for f, h in rep["histograms"].items():
        chart = svg.overlay_histogram(h["edges"], [(f, h["counts"], "#69c")],
                                      [(f"{t['rule']}: {t['op']} {t['value']:.4g}", t["value"]) for t in h["thresholds"]],
                                      width=320, height=110)
        parts.append(f"<div class='h'><b>{e(f)}</b><br>{chart}</div>")
    parts.append("<h2>Examples</h2>")
    for name, exs in rep["examples"].items():
        parts.append(f"<h3>{e(name)}</h3>")
        for x in exs:
            extra = f" values={x['values']}" if x.get("values") else ""
            extra += f" duplicate_of={x['duplicate_of']}" if x.get("duplicate_of") else ""
            parts.append(f"<div class='ex'><b>{e(x['id'])}</b> ({e(', '.join(x['rules']))}){e(extra)}\n"
                         f"<i>instruction:</i> {e(x['instruction'])}\n<i>response:</i> {e(x['response'])}</div><hr>")
    return "\n".join(parts)
