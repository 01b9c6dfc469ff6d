"""Small inline-SVG charts for the run report (no scripts, no external resources).

Every function returns one ``<svg>`` element as text; numbers and labels are escaped here, so the
result can be put into the page as is. Tooltips are ``<title>`` children (shown on hover)."""

from __future__ import annotations

import html
import math
from typing import Sequence

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf"]


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:.4g}"


def overlay_histogram(edges: Sequence[float], series: Sequence[tuple[str, Sequence[int], str]],
                      thresholds: Sequence[tuple[str, float]] = (), width: int = 340, height: int = 120,
                      log: bool = True, grouped: bool = False) -> str:
    """Bars of several count series over the same bins, drawn on top of each other (first = back), or
    side by side within each bin (``grouped``). ``thresholds``: (label, value) drawn as red vertical lines."""
    n = len(edges) - 1
    if n <= 0:
        return ""
    lo, hi = float(edges[0]), float(edges[-1])
    scale = (lambda c: math.log1p(c)) if log else (lambda c: float(c))
    top = max((scale(c) for _, counts, _ in series for c in counts), default=0.0) or 1.0
    bw = width / n
    out = [f"<svg class='chart' width='{width}' height='{height + 16}' viewBox='0 0 {width} {height + 16}' "
           f"role='img'>"]
    out.append(f"<rect x='0' y='0' width='{width}' height='{height}' fill='#fafafa'/>")
    sub = bw / len(series) if grouped and series else bw
    for j, (label, counts, colour) in enumerate(series):
        for i, c in enumerate(counts):
            if not c:
                continue
            bh = scale(c) / top * (height - 2)
            x = i * bw + (j * sub if grouped else 0)
            out.append(f"<rect x='{x:.1f}' y='{height - bh:.1f}' width='{max(sub - 1, 0.8):.1f}' "
                       f"height='{bh:.1f}' fill='{colour}'><title>{_e(label)} {fmt(edges[i])}..{fmt(edges[i + 1])}: "
                       f"{c:,}</title></rect>")
    for label, v in thresholds:
        if v is None or not isinstance(v, (int, float)) or math.isnan(v) or hi <= lo:
            continue
        x = (min(max(v, lo), hi) - lo) / (hi - lo) * width
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='0' y2='{height}' stroke='#d00' stroke-width='2'>"
                   f"<title>{_e(label)}</title></line>")
    integers = n <= 16 and all(abs(edges[i + 1] - edges[i] - 1) < 1e-9 for i in range(n)) and \
        abs(edges[0] + 0.5 - round(edges[0] + 0.5)) < 1e-9
    if integers:  # one bin per integer value: label each bin with its value
        out.extend(f"<text x='{(i + 0.5) * bw:.1f}' y='{height + 12}' font-size='10' text-anchor='middle'>"
                   f"{_e(fmt(edges[i] + 0.5))}</text>" for i in range(n))
    else:
        out.append(f"<text x='0' y='{height + 12}' font-size='10'>{_e(fmt(lo))}</text>"
                   f"<text x='{width}' y='{height + 12}' font-size='10' text-anchor='end'>{_e(fmt(hi))}</text>")
    out.append("</svg>")
    return "".join(out)


def hbars(rows: Sequence[tuple[str, float, str]], width: int = 640, bar_h: int = 18, label_w: int = 220,
          total: float | None = None) -> str:
    """Horizontal bars: (label, value, colour). Bar lengths relative to ``total`` (default: max)."""
    if not rows:
        return ""
    top = total or max((v for _, v, _ in rows), default=0) or 1
    h = len(rows) * (bar_h + 4) + 4
    span = width - label_w - 70
    out = [f"<svg class='chart' width='{width}' height='{h}' viewBox='0 0 {width} {h}' role='img'>"]
    for i, (label, v, colour) in enumerate(rows):
        y = 4 + i * (bar_h + 4)
        w = max(v / top * span, 0.5 if v else 0)
        out.append(f"<text x='{label_w - 6}' y='{y + bar_h - 5}' font-size='12' text-anchor='end'>{_e(label)}</text>"
                   f"<rect x='{label_w}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='{colour}'>"
                   f"<title>{_e(label)}: {fmt(v)}</title></rect>"
                   f"<text x='{label_w + w + 4:.1f}' y='{y + bar_h - 5}' font-size='12'>{_e(fmt(v))}</text>")
    out.append("</svg>")
    return "".join(out)


def scatter(points: Sequence[tuple[float, float, int, str]], width: int = 520, height: int = 380,
            lines: Sequence[Sequence[int]] = ()) -> str:
    """Points (x, y, group, tooltip) coloured by group; ``lines`` joins points of one group (indices)."""
    if not points:
        return ""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    dx, dy = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    pad = 12

    def px(x: float) -> float:
        return pad + (x - x0) / dx * (width - 2 * pad)

    def py(y: float) -> float:
        return height - pad - (y - y0) / dy * (height - 2 * pad)

    out = [f"<svg class='chart' width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img'>",
           f"<rect x='0' y='0' width='{width}' height='{height}' fill='#fafafa' stroke='#ddd'/>"]
    for idx in lines:
        if len(idx) < 2:
            continue
        colour = PALETTE[points[idx[0]][2] % len(PALETTE)]
        pts = " ".join(f"{px(points[i][0]):.1f},{py(points[i][1]):.1f}" for i in idx)
        out.append(f"<polyline points='{pts}' fill='none' stroke='{colour}' stroke-opacity='0.45' stroke-width='1'/>")
    for x, y, g, tip in points:
        colour = PALETTE[g % len(PALETTE)] if g >= 0 else "#999"
        out.append(f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='4' fill='{colour}' fill-opacity='0.85'>"
                   f"<title>{_e(tip)}</title></circle>")
    out.append("</svg>")
    return "".join(out)


def bars(labels: Sequence[str], counts: Sequence[int], width: int = 420, height: int = 140,
         colour: str = "#4e79a7") -> str:
    """Vertical bars with a label under each (small categorical histograms, e.g. cluster sizes)."""
    n = len(counts)
    if not n:
        return ""
    top = max(counts) or 1
    bw = width / n
    out = [f"<svg class='chart' width='{width}' height='{height + 30}' viewBox='0 0 {width} {height + 30}' role='img'>"]
    for i, (label, c) in enumerate(zip(labels, counts)):
        bh = c / top * (height - 14)
        out.append(f"<rect x='{i * bw + 1:.1f}' y='{height - bh:.1f}' width='{max(bw - 2, 0.8):.1f}' height='{bh:.1f}' "
                   f"fill='{colour}'><title>{_e(label)}: {c:,}</title></rect>")
        if n <= 30:
            out.append(f"<text x='{i * bw + bw / 2:.1f}' y='{height - bh - 3:.1f}' font-size='10' "
                       f"text-anchor='middle'>{c:,}</text>"
                       f"<text x='{i * bw + bw / 2:.1f}' y='{height + 12}' font-size='10' "
                       f"text-anchor='middle'>{_e(label)}</text>")
    out.append("</svg>")
    return "".join(out)
