"""Rendering the run report (the dict of ``report.run.build_run_report``) into one self-contained
HTML page: the Jinja2 template next to this file, inline CSS, inline SVG charts, no scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from . import svg

TEMPLATE = "template.html.j2"
BEFORE, AFTER = "#c9c9c9", "#4e79a7"
STAGE_COLOURS = {"dropped": "#e15759", "merged": "#f28e2b", "rewritten": "#b07aa1", "created": "#59a14f",
                 "quarantined": "#9c755f"}


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.Undefined)
    env.filters["num"] = lambda v: svg.fmt(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (
        "–" if v is None else v)
    env.filters["secs"] = lambda v: "–" if v is None else f"{v:,.2f}s"
    env.filters["show"] = show
    env.filters["pct"] = lambda a, b: "–" if not b else f"{100 * a / b:.1f}%"
    return env


def show(v: Any) -> str:
    """A lineage value as short text: check items as ``type: detail``, lists joined, dicts as k=v."""
    if isinstance(v, dict):
        if "type" in v and "detail" in v:
            return f"{v['type']}: {v['detail']}"
        return ", ".join(f"{k}={show(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "; ".join(show(x) for x in v)
    if isinstance(v, float):
        return svg.fmt(v)
    return str(v)


def charts(rep: dict[str, Any]) -> dict[str, Any]:
    """Every SVG of the page, keyed by section (marked safe: the svg module escapes its labels)."""
    out: dict[str, Any] = {}
    f = rep.get("funnel")
    if f:
        rows = [("rows read", f["read"], "#76b7b2")]
        if f["quarantined"]:
            rows.append(("quarantined", f["quarantined"], STAGE_COLOURS["quarantined"]))
        for s in f["stages"]:
            rows.append((f"after {s['stage']}", s["out"], "#4e79a7"))
        out["funnel"] = Markup(svg.hbars(rows, total=max(f["read"], max((r[1] for r in rows), default=0))))
        losses = []
        for s in f["stages"][1:]:
            for kind in ("dropped", "merged", "rewritten"):
                for reason, n in s[kind].items():
                    losses.append((f"{s['stage'].split('-', 1)[-1]}: {kind}{' · ' + reason if reason else ''}", n,
                                   STAGE_COLOURS[kind]))
            if s["created"]:
                losses.append((f"{s['stage'].split('-', 1)[-1]}: created", s["created"], STAGE_COLOURS["created"]))
        if losses:
            out["reasons"] = Markup(svg.hbars(losses, label_w=330, width=760))
    p = rep.get("purge")
    if p:
        if p.get("rules"):
            out["rules"] = Markup(svg.hbars([(r["name"], r["fired"], "#e15759") for r in p["rules"]], label_w=220))
        out["histograms"] = {
            h["feature"]: Markup(svg.overlay_histogram(h["edges"], [("before", h["before"], BEFORE),
                                                                   ("after", h["after"], AFTER)],
                                                       [tuple(t) for t in h["thresholds"]]))
            for h in p.get("histograms", [])
        }
    rt = rep.get("ratings")
    if rt:
        out["scores"] = {
            h["key"]: Markup(svg.overlay_histogram(h["edges"], [(h["key"], h["counts"], AFTER)], log=False))
            for h in rt.get("scores", [])
        }
        cur = rt.get("curate") or {}
        if cur.get("raw_histogram") and cur.get("curated_histogram"):
            n = len(cur["raw_histogram"])
            out["curate"] = Markup(svg.overlay_histogram(
                [i - 0.5 for i in range(n + 1)], [("raw rating", cur["raw_histogram"], BEFORE),
                                                  ("curated", cur["curated_histogram"], AFTER)], log=False,
                grouped=True))
    c = rep.get("clusters")
    if c:
        sizes = {}
        for stage, st in c["stages"].items():
            if st.get("cluster_sizes"):
                d = st["cluster_sizes"]
                sizes[f"{stage}: records per distilled cluster"] = Markup(svg.bars(list(d), list(d.values())))
            elif st.get("pairs_per_cluster"):
                d = st["pairs_per_cluster"]
                sizes[f"{stage}: new pairs per fusion cluster (clusters with at least one)"] = Markup(
                    svg.bars(list(d), list(d.values())))
            if st.get("group_sizes"):
                d = st["group_sizes"]
                sizes[f"{stage}: parents per new record"] = Markup(svg.bars(list(d), list(d.values()), colour="#59a14f"))
        for ps in c.get("persisted") or []:
            if ps["sizes"]:
                sizes[f"{ps['stage']}: cluster sizes (stored assignments)"] = Markup(
                    svg.bars(list(ps["sizes"]), list(ps["sizes"].values())))
        out["cluster_sizes"] = sizes
        out["maps"] = [Markup(svg.scatter([tuple(pt) for pt in m["points"]], lines=m.get("lines") or []))
                       for m in c.get("maps") or []]
    return out


def render_html(rep: dict[str, Any]) -> str:
    return _env().get_template(TEMPLATE).render(r=rep, charts=charts(rep), before=BEFORE, after=AFTER)
