"""Rendering a profile (the dict of ``purgemix.report.profile``): rich tables for the terminal and a
self-contained HTML page with inline SVG histograms (no external scripts, styles or fonts)."""

from __future__ import annotations

import html
import math
from typing import Any

from .profile import METRICS, ROLES

SPARK = " ▁▂▃▄▅▆▇█"
LANGUAGE_NAMES = {
    "en": "English", "zh": "Chinese", "es": "Spanish", "fr": "French", "de": "German", "ru": "Russian",
    "ja": "Japanese", "ko": "Korean", "pt": "Portuguese", "it": "Italian", "nl": "Dutch", "ar": "Arabic",
    "hi": "Hindi", "tr": "Turkish", "pl": "Polish", "vi": "Vietnamese", "id": "Indonesian", "sv": "Swedish",
    "und": "undetermined (blank)",
}


def _pct(x: float) -> str:
    return "<0.1%" if 0 < x < 0.001 else f"{100 * x:.1f}%"


def _count_text(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:,.1f}"


def sparkline(hist: list[dict[str, Any]], width: int = 15) -> str:
    counts = [b["count"] for b in hist]
    group = max(1, math.ceil(len(counts) / width))
    counts = [sum(counts[i:i + group]) for i in range(0, len(counts), group)]
    top = max(counts, default=0)
    if not top:
        return ""
    return "".join(SPARK[0] if c == 0 else SPARK[max(1, math.ceil(8 * c / top))] for c in counts)


def _language_label(code: str) -> str:
    name = LANGUAGE_NAMES.get(code)
    return f"{code} ({name})" if name else code


# -- terminal ------------------------------------------------------------------------------------


def print_tables(p: dict[str, Any], console, top: int = 15) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    n = p["records"] or 1
    ov = Table(title="dataset", box=box.SIMPLE_HEAD, show_header=False, title_justify="left")
    ov.add_column(style="bold")
    ov.add_column(justify="right")
    ov.add_column(style="dim")
    ov.add_row("rows read", f"{p['read']:,}", "")
    ov.add_row("records", f"{p['records']:,}", "")
    ov.add_row("quarantined", f"{p['quarantined']:,}", _pct(p["quarantined"] / max(p["read"], 1)))
    ov.add_row("messages", f"{p['messages']:,}", f"{p['turns']['mean']:.2f} turns per record (system excluded)")
    ov.add_row("multi-turn records", _pct(p["turns"]["multi_turn_share"]), "more than one user/assistant pair")
    for key, label in (("system_prompt", "with system prompt"), ("input", "with input/context"),
                       ("empty_instruction", "empty instruction"), ("empty_response", "empty response")):
        ov.add_row(label, _pct(p["shares"][key]), f"{p['counts'][key]:,} records")
    for key, label in (("exact_content", "exact duplicates"), ("exact_prompt", "duplicate prompts")):
        d = p["duplicates"][key]
        ov.add_row(label, _pct(d["rate"]), f"{d['duplicates']:,} extra copies in {d['groups']:,} groups"
                   + (f", largest {d['largest_group']:,}" if d["groups"] else ""))
    conv = p["lengths"]["conversation"]["tokens"]
    ov.add_row("tokens", f"{conv['sum']:,}", f"all turns, tokenizer {p['tokenizer']}")
    console.print(ov)
    if not p["records"]:
        console.print("[yellow]no records to profile[/] (every row was quarantined; see the quarantine file)")
        return

    if len(p["sources"]) > 1 or p.get("by"):
        src = Table(title="sources", box=box.SIMPLE_HEAD, title_justify="left")
        src.add_column("source")
        src.add_column("records", justify="right")
        src.add_column("share", justify="right")
        for name, k in list(p["sources"].items())[:top]:
            src.add_row(escape(name), f"{k:,}", _pct(k / n))
        if p.get("by"):
            for name, k in list(p["by"]["values"].items())[:top]:
                src.add_row(f"[cyan]{escape(p['by']['field'])}[/]={escape(name)}", f"{k:,}", _pct(k / n))
        console.print(src)

    ln = Table(title="lengths", caption="quantiles exact below 256, else within ~1%; histograms on a log scale",
               box=box.SIMPLE_HEAD, title_justify="left", padding=(0, 1), collapse_padding=True, pad_edge=False)
    for col in ("role", "unit", "mean", "p10", "p50", "p90", "p99", "max", "histogram"):
        ln.add_column(col, justify="left" if col in ("role", "unit", "histogram") else "right", no_wrap=True)
    for role in ROLES:
        r = p["lengths"][role]
        if not r["records"]:
            continue
        for i, m in enumerate(METRICS):
            s = r[m]
            first = role if i == 0 else (f"[dim]{r['records']:,} rec[/]" if i == 1 else "")
            ln.add_row(first, m, _count_text(s["mean"]), _count_text(s["p10"]), _count_text(s["p50"]), _count_text(s["p90"]), _count_text(s["p99"]),
                       f"{s['max']:,}", f"[green]{sparkline(s['histogram'])}[/]", end_section=(i == len(METRICS) - 1))
    console.print(ln)

    lg = Table(title="languages (fastText lid.176)", box=box.SIMPLE_HEAD, title_justify="left")
    lg.add_column("instruction")
    lg.add_column("", justify="right")
    lg.add_column("response")
    lg.add_column("", justify="right")
    ins = list(p["languages"]["instruction"]["counts"].items())[:8]
    res = list(p["languages"]["response"]["counts"].items())[:8]
    for i in range(max(len(ins), len(res))):
        a = ins[i] if i < len(ins) else ("", 0)
        b = res[i] if i < len(res) else ("", 0)
        lg.add_row(_language_label(a[0]) if a[0] else "", _pct(a[1] / n) if a[0] else "",
                   _language_label(b[0]) if b[0] else "", _pct(b[1] / n) if b[0] else "")
    console.print(lg)

    lw = Table(title="leading words (first word of the instruction)", box=box.SIMPLE_HEAD, title_justify="left")
    lw.add_column("word")
    lw.add_column("records", justify="right")
    lw.add_column("share", justify="right")
    lw.add_column("")
    words = p["leading_words"]["top"][:top]
    most = max((k for _, k in words), default=1)
    for w, k in words:
        lw.add_row(escape(w), f"{k:,}", _pct(k / n), "[blue]" + "█" * max(1, round(24 * k / most)) + "[/]")
    lw.caption = f"{p['leading_words']['distinct']:,} distinct leading words"
    console.print(lw)


# -- HTML ------------------------------------------------------------------------------------------

_W, _H, _PAD_L, _PAD_B, _PAD_T = 420, 150, 44, 34, 8


def svg_histogram(hist: list[dict[str, Any]], label: str) -> str:
    """A bar chart of display bins (log-spaced, so bars are equal width) as inline SVG."""
    if not hist:
        return '<svg class="hist" width="420" height="40"><text x="4" y="24">no data</text></svg>'
    top = max(b["count"] for b in hist) or 1
    plot_w, plot_h = _W - _PAD_L - 6, _H - _PAD_B - _PAD_T
    bw = plot_w / len(hist)
    parts = [f'<svg class="hist" role="img" aria-label="{html.escape(label)}" width="{_W}" height="{_H}" '
             f'viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg">']
    for frac in (0.5, 1.0):
        y = _PAD_T + plot_h * (1 - frac)
        parts.append(f'<line x1="{_PAD_L}" y1="{y:.1f}" x2="{_W - 6}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{_PAD_L - 4}" y="{y + 4:.1f}" class="ytick">{_short(top * frac)}</text>')
    for i, b in enumerate(hist):
        h = plot_h * b["count"] / top
        x, y = _PAD_L + i * bw, _PAD_T + plot_h - h
        rng = f"{b['lo']:,}" if b["lo"] == b["hi"] else f"{b['lo']:,}–{b['hi']:,}"
        parts.append(f'<rect x="{x + 0.5:.1f}" y="{y:.1f}" width="{max(bw - 1, 0.5):.1f}" height="{h:.1f}" '
                     f'class="bar"><title>{rng}: {b["count"]:,}</title></rect>')
    step = max(1, len(hist) // 5)
    for i in list(range(0, len(hist), step)):
        x = _PAD_L + i * bw
        parts.append(f'<text x="{x:.1f}" y="{_H - _PAD_B + 14}" class="xtick">{_short(hist[i]["lo"])}</text>')
    parts.append(f'<line x1="{_PAD_L}" y1="{_PAD_T + plot_h}" x2="{_W - 6}" y2="{_PAD_T + plot_h}" class="axis"/>')
    parts.append(f'<text x="{_PAD_L + plot_w / 2:.1f}" y="{_H - 4}" class="xlabel">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(items: list[tuple[str, int]], total: int, width: int = 420) -> str:
    """Horizontal bars (languages, leading words, sources) as inline SVG."""
    if not items:
        return ""
    row, label_w = 18, 165
    top = max(k for _, k in items) or 1
    height = row * len(items) + 4
    parts = [f'<svg class="bars" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'xmlns="http://www.w3.org/2000/svg">']
    for i, (name, k) in enumerate(items):
        y = 2 + i * row
        w = (width - label_w - 110) * k / top
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" class="blabel">{html.escape(_clip(str(name), 24))}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{max(w, 1):.1f}" height="{row - 5}" class="bar">'
                     f'<title>{html.escape(str(name))}: {k:,}</title></rect>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" class="bval">{k:,} · {html.escape(_pct(k / max(total, 1)))}'
                     '</text>')
    parts.append("</svg>")
    return "".join(parts)


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _short(x: float) -> str:
    x = float(x)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            v = x / div
            return f"{v:.0f}{suffix}" if v >= 10 else f"{v:.1f}{suffix}"
    return f"{x:.0f}" if x >= 10 or x.is_integer() else f"{x:.1f}"


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>purgemix profile: {{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1340px;padding:0 16px;color:#1d2330}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.sub{color:#667085}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{border:1px solid #dde2ea;border-radius:8px;padding:8px 14px;min-width:130px}
.card b{display:block;font-size:20px}.card span{color:#667085;font-size:12px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;text-align:right;border-bottom:1px solid #eef1f5}
th{color:#475467;font-weight:600}td:first-child,th:first-child{text-align:left}
.grid3{display:grid;grid-template-columns:repeat(auto-fill,minmax(430px,1fr));gap:6px 14px}
.hist .bar,.bars .bar{fill:#4f7cff}.hist .bar:hover,.bars .bar:hover{fill:#f79009}
.grid{stroke:#eef1f5}.axis{stroke:#98a2b3}.xtick{font-size:10px;fill:#667085}
.ytick{font-size:10px;fill:#667085;text-anchor:end}.xlabel{font-size:11px;fill:#344054;text-anchor:middle}
.blabel{font-size:12px;text-anchor:end;fill:#344054}.bval{font-size:11px;fill:#667085}
.cols{display:flex;flex-wrap:wrap;gap:30px}.warn{color:#b42318;font-weight:600}.note{color:#667085;font-size:12px}
</style></head><body>
<h1>{{ title }}</h1>
<div class="sub">purgemix {{ p.purgemix }} profile · tokenizer <code>{{ p.tokenizer }}</code> ·
{% for i in p.inputs %}<code>{{ i.name }}</code> ({{ i.format }}){{ ", " if not loop.last }}{% endfor %}</div>
<div class="cards">
{% for label, value, note in cards %}<div class="card"><b>{{ value }}</b><span>{{ label }}{% if note %} · {{ note }}{% endif %}</span></div>
{% endfor %}</div>
{% if not p.records %}<p class="warn">No records to profile: every row was quarantined (see the run's quarantine.jsonl).</p>{% endif %}

<h2>Length distributions</h2>
<p class="note">Log-spaced bins (equal-width bars); hover a bar for its range and count. Quantiles are exact
below 256 and within about 1% above.</p>
<table><tr><th>role</th><th>unit</th><th>records</th><th>mean</th><th>p10</th><th>p25</th><th>p50</th><th>p75</th>
<th>p90</th><th>p99</th><th>max</th><th>total</th></tr>
{% for role in roles if p.lengths[role].records %}{% for m in metrics %}{% set s = p.lengths[role][m] %}
<tr><td>{{ role if loop.first }}</td><td>{{ m }}</td><td>{{ "{:,}".format(s.n) if loop.first }}</td>
<td>{{ num(s.mean) }}</td><td>{{ num(s.p10) }}</td><td>{{ num(s.p25) }}</td><td>{{ num(s.p50) }}</td>
<td>{{ num(s.p75) }}</td><td>{{ num(s.p90) }}</td><td>{{ num(s.p99) }}</td><td>{{ "{:,}".format(s.max) }}</td>
<td>{{ "{:,}".format(s.sum) }}</td></tr>{% endfor %}{% endfor %}
</table>
{% for role in roles if p.lengths[role].records %}
<h3>{{ role }} <span class="note">({{ p.lengths[role].what }}; {{ "{:,}".format(p.lengths[role].records) }} records)</span></h3>
<div class="grid3">{% for m in metrics %}{{ hist[role][m] | safe }}{% endfor %}</div>
{% endfor %}

<h2>Languages</h2>
<div class="cols">{% for role in ["instruction", "response"] %}<div><h3>{{ role }}</h3>{{ langs[role] | safe }}
<p class="note">{{ "{:,}".format(p.languages[role].low_confidence) }} detections below confidence
{{ p.languages[role].low_confidence_below }}</p></div>{% endfor %}</div>

<h2>Leading words</h2>
<p class="note">{{ p.leading_words.method }}; {{ "{:,}".format(p.leading_words.distinct) }} distinct.</p>
{{ words | safe }}

<h2>Sources and turns</h2>
<div class="cols"><div><h3>sources</h3>{{ sources | safe }}</div>
{% if by %}<div><h3>{{ p.by.field }} ({{ "{:,}".format(p.by.distinct) }} distinct)</h3>{{ by | safe }}</div>{% endif %}
<div><h3>turns per record (system excluded)</h3>{{ turns | safe }}</div></div>

<h2>Duplicates</h2>
<table><tr><th>kind</th><th>duplicate records</th><th>rate</th><th>unique</th><th>repeated contents</th><th>largest group</th></tr>
{% for key, label in [("exact_content", "exact content (all turns)"), ("exact_prompt", "exact prompt")] %}{% set d = p.duplicates[key] %}
<tr><td>{{ label }}</td><td>{{ "{:,}".format(d.duplicates) }}</td><td>{{ pct(d.rate) }}</td><td>{{ "{:,}".format(d.unique) }}</td>
<td>{{ "{:,}".format(d.groups) }}</td><td>{{ "{:,}".format(d.largest_group) }}</td></tr>{% endfor %}
</table>
<p class="note">Normalisation: {{ p.duplicates.normalisation }}. 64-bit hashes.</p>
<p class="note">Approximations: {{ p.approximations }}.</p>
</body></html>
"""


def render_html(p: dict[str, Any]) -> str:
    import jinja2

    n = p["records"]
    title = ", ".join(i["name"] for i in p["inputs"]) or "dataset"
    conv = p["lengths"]["conversation"]["tokens"]
    cards = [
        ("records", f"{n:,}", f"{p['read']:,} rows read"),
        ("quarantined", f"{p['quarantined']:,}", ""),
        ("exact duplicates", _pct(p["duplicates"]["exact_content"]["rate"]),
         f"{p['duplicates']['exact_content']['duplicates']:,} records"),
        ("duplicate prompts", _pct(p["duplicates"]["exact_prompt"]["rate"]), ""),
        ("tokens", _short(conv["sum"]), p["tokenizer"]),
        ("turns per record", f"{p['turns']['mean']:.2f}", f"{_pct(p['turns']['multi_turn_share'])} multi-turn"),
        ("with input", _pct(p["shares"]["input"]), ""),
        ("with system prompt", _pct(p["shares"]["system_prompt"]), ""),
        ("empty responses", _pct(p["shares"]["empty_response"]), ""),
    ]
    hist = {role: {m: svg_histogram(p["lengths"][role][m]["histogram"], f"{role} length ({m})") for m in METRICS}
            for role in ROLES}
    langs = {role: svg_bars([(_language_label(k), v) for k, v in list(p["languages"][role]["counts"].items())[:12]], n)
             for role in ("instruction", "response")}
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    tpl = env.from_string(_TEMPLATE)
    return tpl.render(
        p=p, title=title, cards=cards, roles=ROLES, metrics=METRICS, hist=hist, langs=langs,
        words=svg_bars([(w, k) for w, k in p["leading_words"]["top"]], n, width=520),
        sources=svg_bars(list(p["sources"].items())[:20], n),
        by=svg_bars(list(p["by"]["values"].items())[:20], n) if p.get("by") else "",
        turns=svg_bars([(k, v) for k, v in p["turns"]["per_record"].items()][:20], n),
        num=_count_text, pct=_pct,
    )
